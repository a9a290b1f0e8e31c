"""Replay buffers: preallocated numpy rings with uniform sampling.

A buffer knows transitions, never networks. When full, the oldest transition is overwritten (first in,
first out): evicting at random, as some course code does, silently throws away recent experience.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batch:
    """A sampled minibatch; every array has leading dimension `batch`."""

    obs: np.ndarray
    action: np.ndarray  # normalised to [-1, 1]
    reward: np.ndarray  # (batch,)
    next_obs: np.ndarray  # the true next observation, also at a truncation
    terminated: np.ndarray  # (batch,) 1.0 where the episode ended in a terminal state, else 0.0
    discount: np.ndarray | None = None  # (batch,) γ^k of n-step transitions; None: the config's gamma
    weight: np.ndarray | None = None  # (batch,) importance weights of prioritized replay
    index: np.ndarray | None = None  # (batch,) buffer slots, to update their priorities


class ReplayBuffer:
    """Ring buffer of (s, a, r, s', terminated); O(1) add, vectorised uniform sampling."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        obs_dtype: np.dtype | type = np.float32,
        store_discount: bool = False,
    ) -> None:
        self.capacity = capacity
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
    ) -> None:
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

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> Batch:
        """The transitions in slots `idx` (what a prioritized sampler draws)."""
        return Batch(
            self.obs[idx],
            self.action[idx],
            self.reward[idx],
            self.next_obs[idx],
            self.terminated[idx],
            None if self.discount is None else self.discount[idx],
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored transitions in insertion order, oldest first (for checkpoints)."""
        order = np.arange(self.pos - self.size, self.pos) % self.capacity
        names = ("obs", "action", "reward", "next_obs", "terminated")
        if self.discount is not None:
            names += ("discount",)
        return {name: getattr(self, name)[order] for name in names}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["reward"])
        if n > self.capacity:
            raise ValueError(f"{n} transitions do not fit a buffer of capacity {self.capacity}")
        for name, values in arrays.items():
            getattr(self, name)[:n] = values
        self.size = n
        self.pos = n % self.capacity
