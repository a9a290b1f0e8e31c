"""Proportional prioritized experience replay (Schaul et al. 2016) over any ring buffer.

Transition i is drawn with probability P(i) = p_i^α / Σ_k p_k^α, where p_i = |δ_i| + ε is its last
TD error; new transitions get the largest priority seen so far, so each is replayed at least once soon.
The bias this introduces is corrected by importance weights w_i = (N · P(i))^−β / max_j w_j, with β
annealed to 1 by the trainer. The sum-tree keeps Σ p^α for every subtree, so sampling and updates are
O(log N) and, here, vectorised over the batch: one numpy operation per tree level, no loop over rows.

LAP (Fujimoto et al. 2020; TD7's replay), with `min_priority`: p_i = max(|δ_i|, min_priority), no
importance weights (LAP's loss makes the expected update that of a squared error under uniform
sampling), and at each target update the priority given to new transitions falls back to the largest
one stored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.nstep import NStepAggregator
from ddpg.data.replay import ReplayBuffer
from ddpg.types import Batch, Transition


class SumTree:
    """A complete binary tree in one array: node k has children 2k and 2k+1, leaves at [L, 2L)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.leaves = 1 << max(capacity - 1, 0).bit_length()  # L, the next power of two
        self.depth = self.leaves.bit_length() - 1
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)  # nodes[1] is the root

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    @property
    def largest(self) -> float:
        return float(self.nodes[self.leaves :].max())

    def get(self, index: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaves + np.asarray(index)]

    def set(self, index: np.ndarray, value: np.ndarray) -> None:
        """Set leaves `index` to `value`, then recompute their ancestors level by level.

        Parents are recomputed from their children rather than adjusted by differences, so repeated
        indices are harmless and rounding errors do not accumulate over millions of updates.
        """
        node = self.leaves + np.asarray(index, dtype=np.int64)
        self.nodes[node] = value
        for _ in range(self.depth):
            node = node >> 1
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]

    def set_one(self, index: int, value: float) -> None:
        """`set` for a single leaf, in plain ints: one new transition per environment step, ~50x faster."""
        node = self.leaves + index
        nodes = self.nodes
        nodes[node] = value
        for _ in range(self.depth):
            node >>= 1
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each prefix mass u in [0, total), the leaf i with Σ_{k<i} p_k <= u < Σ_{k<=i} p_k."""
        u = np.asarray(mass, dtype=np.float64).copy()
        node = np.ones(len(u), dtype=np.int64)
        for _ in range(self.depth):
            left = self.nodes[2 * node]
            # Never step into an empty right subtree: rounding can put u a hair past the left sum.
            right = (u >= left) & (self.nodes[2 * node + 1] > 0)
            u -= np.where(right, left, 0.0)
            node = 2 * node + right
        return node - self.leaves


class PrioritizedReplayBuffer:
    """Wraps a `ReplayBuffer` or `FrameReplayBuffer` (anything with their `add`, `gather`, `pos`, `size`,
    `capacity`), adding priorities. `sample` returns a `Batch` with `weight` and `index` filled in.

    Only stored transitions have a priority above 0, so only they can be drawn: the stored slots are
    (pos − size … pos − 1) mod capacity, and when a buffer lets its oldest transitions go early (the
    frame buffer does when its frames run out) their slots drop to priority 0 here."""

    def __init__(
        self,
        buffer: ReplayBuffer | FrameReplayBuffer,
        alpha: float = 0.6,
        eps: float = 1e-6,
        min_priority: float | None = None,
    ) -> None:
        self.buffer = buffer
        self.alpha = alpha
        self.eps = eps
        self.min_priority = min_priority  # LAP's floor on |δ|; None: |δ| + eps, importance weights
        self.tree = SumTree(buffer.capacity)
        self.max_priority = 1.0  # largest p seen (LAP: stored), given to new transitions
        # The wrapped ring's (pos, size) when priorities last matched it: the frame buffer can also let
        # transitions go between adds (when the trainer records an n-step run's frames).
        self._seen = (buffer.pos, len(buffer))

    def __len__(self) -> int:
        return len(self.buffer)

    @property
    def capacity(self) -> int:
        return self.buffer.capacity

    @property
    def windows(self) -> list[NStepAggregator]:
        return self.buffer.windows

    def add(self, *args: Any, **kwargs: Any) -> None:
        slot = self.buffer.pos
        self.buffer.add(*args, **kwargs)
        self._forget_evicted(keep=slot)
        self.tree.set_one(slot, self.max_priority**self.alpha)

    def store(self, transition: Transition, stream: int = 0) -> None:
        # The wrapped buffer's windows decide what is added; each addition comes through `add` here.
        self.buffer.store(transition, stream, add=self.add)

    def restart(self, stream: int) -> None:
        self.buffer.restart(stream)

    def _forget_evicted(self, keep: int = -1) -> None:
        """Priority 0 for the slots whose transitions left the wrapped buffer since last time.

        Eviction is oldest first, so they are the `left` oldest of the slots stored then. A full ring
        losing only the slot it just overwrote (the usual case) needs no tree update.
        """
        (pos, size), (now_pos, now_size) = self._seen, (self.buffer.pos, len(self.buffer))
        added = (now_pos - pos) % self.capacity
        left = added + size - now_size
        self._seen = (now_pos, now_size)
        if left <= 0 or (left == 1 and (pos - size) % self.capacity == keep):
            return
        gone = (pos - size + np.arange(left)) % self.capacity
        gone = gone[gone != keep]
        if gone.size:
            self.tree.set(gone, np.zeros(gone.size))

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        """Stratified proportional sampling: one draw from each of `batch_size` equal slices of mass."""
        n = len(self.buffer)
        if n == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        self._forget_evicted()
        total = self.tree.total
        mass = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        # find() only walks into subtrees of positive mass, so it lands on a stored transition.
        index = self.tree.find(np.minimum(mass, np.nextafter(total, 0)))
        lap = self.min_priority is not None  # LAP's loss needs no importance weights
        weight = None if lap else importance_weights(self.tree.get(index) / total, n, beta)
        return dataclasses.replace(self.buffer.gather(index), weight=weight, index=index)

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray, target_update: bool = False) -> None:
        td_abs = np.abs(np.asarray(td_abs, dtype=np.float64))
        priority = td_abs + self.eps if self.min_priority is None else np.maximum(td_abs, self.min_priority)
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.set(index, priority**self.alpha)
        if target_update and self.min_priority is not None:
            # LAP: new transitions no longer get a priority that only transitions since replayed had.
            self._forget_evicted()
            self.max_priority = self.tree.largest ** (1.0 / self.alpha)

    def arrays(self) -> dict[str, np.ndarray]:
        """The wrapped buffer's arrays plus each slot's p^α, laid out as in memory (slots 0 … the last
        with a priority; for a `ReplayBuffer` that is 0 … size−1)."""
        self._forget_evicted()
        used = np.flatnonzero(self.tree.get(np.arange(self.capacity)))
        slots = np.arange(used[-1] + 1 if len(used) else 0)
        return {
            **self.buffer.arrays(),
            "priority": self.tree.get(slots),
            "max_priority": np.array(self.max_priority),
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        arrays = dict(arrays)
        priority = arrays.pop("priority")
        self.max_priority = float(arrays.pop("max_priority"))
        self.buffer.load_arrays(arrays)
        self.tree = SumTree(self.buffer.capacity)
        self.tree.set(np.arange(len(priority)), priority)
        self._seen = (self.buffer.pos, len(self.buffer))


def importance_weights(probability: np.ndarray, size: int, beta: float) -> np.ndarray:
    """w_i = (N · P(i))^−β, divided by the batch's largest so that weights only ever scale down."""
    w = (size * probability) ** -beta
    return (w / w.max()).astype(np.float32)


def annealed_beta(beta0: float, step: int, total_steps: int) -> float:
    """β grows linearly from β0 at step 0 to 1 at `total_steps`: full correction by the end."""
    return beta0 + (1.0 - beta0) * min(step / max(total_steps, 1), 1.0)
