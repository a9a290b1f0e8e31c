"""Replay: the interface every buffer implements, and the ring buffer for state observations.

A buffer knows transitions, never networks. It takes the collector's 1-step transitions (`store`),
turns them into n-step ones itself when asked (one window per stream, data/nstep.py) and hands out
minibatches (`sample`). When full, the oldest transition is overwritten (first in, first out):
evicting at random, as some course code does, silently throws away recent experience.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from ddpg.agent.learner import TensorBatch
from ddpg.data.nstep import NStepAggregator
from ddpg.types import Batch, Transition


class Replay(Protocol):
    """What the loop and checkpoints see of a replay buffer (ReplayBuffer, FrameReplayBuffer, or
    either behind PrioritizedReplayBuffer)."""

    @property
    def capacity(self) -> int: ...

    @property
    def windows(self) -> list[NStepAggregator]:
        """One n-step window per stream, each holding its episode's last < n steps; none for n = 1."""
        ...

    def __len__(self) -> int: ...

    def store(self, transition: Transition, stream: int = 0) -> None:
        """One environment step of stream `stream` (an env stepped together with others)."""
        ...

    def restart(self, stream: int) -> None:
        """Forget the steps still waiting in `stream`'s window: its episode was abandoned."""
        ...

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        """A minibatch; `beta` is prioritized replay's importance-weight exponent (uniform: unused)."""
        ...

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray, target_update: bool = False) -> None:
        """The |TD error| of the transitions `index` last sampled; `target_update`: the update that
        computed them also moved the targets (LAP then resets its largest priority)."""
        ...

    def arrays(self) -> dict[str, np.ndarray]:
        """The whole state as laid out in memory, for checkpoints (the windows are saved apart)."""
        ...

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...


AddFn = Callable[..., Any]  # a buffer's `add`


def nstep_windows(n_step: int, gamma: float, streams: int) -> list[NStepAggregator]:
    return [NStepAggregator(n_step, gamma) for _ in range(streams)] if n_step > 1 else []


class ReplayBuffer:
    """Ring buffer of (s, a, r, s', terminated); O(1) add, vectorised uniform sampling.

    With `n_step > 1`, `store` passes each stream's steps through its own n-step window and the ring
    holds n-step transitions with their discount γ^k; `add` stores one transition as given."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        obs_dtype: np.dtype | type = np.float32,
        store_discount: bool = False,
        n_step: int = 1,
        gamma: float = 0.99,
        streams: int = 1,
    ) -> None:
        self.capacity = capacity
        self.windows = nstep_windows(n_step, gamma, streams)
        store_discount = store_discount or n_step > 1
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        # Per-transition discount γ^k, only for n-step returns: 1-step buffers leave it to gamma.
        self.discount = np.zeros(capacity, dtype=np.float32) if store_discount else None
        self.pos = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        discount: float | None = None,
        steps: int = 1,
        stream: int = 0,
        first: bool = False,
    ) -> None:
        # `steps`, `stream` and `first` place a transition among the frames of a FrameReplayBuffer, which
        # has the same `add`; a state transition holds both observations whole and needs none of them.
        if (discount is None) != (self.discount is None):
            raise ValueError("give a discount exactly when the buffer was made with store_discount=True")
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        if self.discount is not None:
            self.discount[i] = discount
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def store(self, transition: Transition, stream: int = 0, add: AddFn | None = None) -> None:
        add = add or self.add  # a prioritized wrapper passes its own, to give each new slot a priority
        if not self.windows:
            t = transition
            add(t.obs, t.action, t.reward, t.next_obs, t.terminated)
            return
        for n in self.windows[stream].push(transition):
            add(n.obs, n.action, n.reward, n.next_obs, n.terminated, discount=n.discount)

    def restart(self, stream: int) -> None:
        if self.windows:
            self.windows[stream].clear()

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        return self.gather(self.draw(batch_size, rng))

    def draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """The slots of a uniform minibatch: every sampler of this ring draws them here, so that one
        generator gives the same transitions whichever sampler the run uses."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return rng.integers(0, self.size, size=batch_size)

    def gather(self, idx: np.ndarray, out: Batch | None = None) -> Batch:
        """The transitions in slots `idx` (what a sampler draws), into `out`'s arrays when given (a batch
        this buffer gathered before, of the same size), else into new ones."""
        if out is not None:
            for name in self._fields():
                # "clip" lets take write straight into `out` ("raise" copies through a buffer first);
                # the indices are in range by construction, so nothing is clipped.
                np.take(getattr(self, name), idx, axis=0, out=getattr(out, name), mode="clip")
            return out
        return Batch(
            self.obs[idx],
            self.action[idx],
            self.reward[idx],
            self.next_obs[idx],
            self.terminated[idx],
            None if self.discount is None else self.discount[idx],
        )

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray, target_update: bool = False) -> None:
        """Uniform replay has no priorities."""

    _STATE = ("obs", "action", "reward", "next_obs", "terminated")

    def arrays(self) -> dict[str, np.ndarray]:
        """The whole state as laid out in memory, for checkpoints: `load_arrays` restores it exactly, so
        the same sampled indices give the same transitions after a resume."""
        state = {name: getattr(self, name)[: self.size] for name in self._fields()}
        state["counters"] = np.array([self.pos, self.size], dtype=np.int64)
        return state

    def _fields(self) -> tuple[str, ...]:
        return self._STATE + (("discount",) if self.discount is not None else ())

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pos, size = (int(v) for v in arrays["counters"])
        if not (0 <= size <= self.capacity and 0 <= pos < self.capacity):
            raise ValueError(f"saved position {pos} and size {size} do not fit capacity {self.capacity}")
        for name in self._fields():
            target = getattr(self, name)
            if arrays[name].shape != (size, *target.shape[1:]):
                raise ValueError(f"saved {name} of shape {arrays[name].shape} does not fit this buffer")
            target[:size] = arrays[name]
        self.pos, self.size = pos, size

    def transitions(self) -> Batch:
        """Every stored transition in insertion order, oldest first (for tests and inspection)."""
        return self.gather(np.arange(self.pos - self.size, self.pos) % self.capacity)


class InPlaceSampler:
    """Uniform minibatches of a `ReplayBuffer`, gathered into arrays allocated once, with CPU tensors
    over those arrays made once: the training loop's sampler, one batch per update.

    Each `sample` overwrites the batch the previous call returned; a batch held across two samples
    changes under its holder. The loop uses a batch for the one update it was drawn for; whoever keeps
    batches takes `ReplayBuffer.sample`, whose arrays are new on every call. Both draw and gather with
    the buffer's own `draw` and `gather`, so a run samples the same transitions either way. At batch 256
    this halves sampling's time per update (docs/performance.md)."""

    def __init__(self, buffer: ReplayBuffer, batch_size: int) -> None:
        self.buffer, self.batch_size = buffer, batch_size
        # Slot 0 batch_size times: arrays of the batch's shapes and dtypes, filled by every sample.
        self.batch = buffer.gather(np.zeros(batch_size, dtype=np.intp))
        self.tensors = TensorBatch.from_numpy(self.batch, torch.device("cpu"))  # over the same memory

    @classmethod
    def of(cls, buffer: Replay, batch_size: int, device: torch.device) -> InPlaceSampler | None:
        """A sampler for `buffer` where one fits: a plain (uniform) `ReplayBuffer` and a learner on the
        CPU, where the tensors share the arrays' memory; else None."""
        if type(buffer) is not ReplayBuffer or device.type != "cpu":
            return None
        return cls(buffer, batch_size)

    def sample(self, rng: np.random.Generator) -> tuple[Batch, TensorBatch]:
        """The next minibatch, as arrays and as tensors over the same memory."""
        self.buffer.gather(self.buffer.draw(self.batch_size, rng), out=self.batch)
        return self.batch, self.tensors
