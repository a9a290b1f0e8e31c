"""The records that flow between the wings, at the ground floor so that no import runs upward.

A `Transition` leaves the collector, a `Batch` leaves the replay buffer for the learner, an `Episode`
goes to the run's logs. `ActionScale` is the one place the environment's action units meet the
library's normalised [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ActionScale:
    """Affine map between normalised actions in [-1, 1] and the environment's [low, high]."""

    low: np.ndarray
    high: np.ndarray

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return (self.low + (action + 1.0) * 0.5 * (self.high - self.low)).astype(self.low.dtype)

    def from_env(self, action: np.ndarray) -> np.ndarray:
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).astype(np.float32)


@dataclass(frozen=True)
class Transition:
    obs: np.ndarray
    action: np.ndarray  # normalised, as stored and learned from
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool
    first: bool = False  # `obs` is the first observation of its episode (the collector knows)


@dataclass(frozen=True)
class Episode:
    index: int
    ret: float
    length: int
    info: dict[str, Any]


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
