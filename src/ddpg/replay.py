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


class ReplayBuffer:
    """Ring buffer of (s, a, r, s', terminated); O(1) add, vectorised uniform sampling."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_dim: int,
        obs_dtype: np.dtype | type = np.float32,
    ) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros((capacity, action_dim), dtype=np.float32)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.pos = 0  # where the next transition goes
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(
        self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool
    ) -> None:
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(
            self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminated[idx]
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored transitions in insertion order, oldest first (for checkpoints)."""
        order = np.arange(self.pos - self.size, self.pos) % self.capacity
        return {
            name: getattr(self, name)[order] for name in ("obs", "action", "reward", "next_obs", "terminated")
        }

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["reward"])
        if n > self.capacity:
            raise ValueError(f"{n} transitions do not fit a buffer of capacity {self.capacity}")
        for name, values in arrays.items():
            getattr(self, name)[:n] = values
        self.size = n
        self.pos = n % self.capacity
