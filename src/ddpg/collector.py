"""Stepping the environment: exploration, and terminated kept apart from truncated.

The collector turns the actor's normalised actions into environment actions and back into transitions.
It stores the observation the environment returned from `step`, so at a time-limit truncation the
buffer holds the true final observation — never the first observation of the next episode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from .networks import ActionScale
from .noise import ActionNoise


@dataclass(frozen=True)
class Transition:
    obs: np.ndarray
    action: np.ndarray  # normalised, as stored and learned from
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool


@dataclass(frozen=True)
class Episode:
    index: int
    ret: float
    length: int
    info: dict[str, Any]


class NonFiniteError(RuntimeError):
    """The environment returned a NaN or infinite observation or reward."""


class Collector:
    """Acts in one environment: uniform random during warm-up, then μ(s) + noise, clipped."""

    def __init__(self, env: gym.Env, noise: ActionNoise, rng: np.random.Generator, seed: int) -> None:
        self.env = env
        self.noise = noise
        self.rng = rng
        space = env.action_space
        self.scale = ActionScale(space.low, space.high)
        self.action_dim = int(np.prod(space.shape))
        env.action_space.seed(seed)
        self.obs, _ = env.reset(seed=seed)
        self.episode = 0
        self.episode_return = 0.0
        self.episode_length = 0

    def explore(self, policy: Callable[[np.ndarray], np.ndarray] | None, step: int) -> np.ndarray:
        """A normalised action: uniform when `policy` is None (warm-up), else μ(s) plus noise."""
        if policy is None:
            return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        action = policy(self.obs) + self.noise.sample(step, self.episode)
        return np.clip(action, -1.0, 1.0)

    def step(self, action: np.ndarray) -> tuple[Transition, Episode | None]:
        env_action = self.scale.to_env(action).reshape(self.env.action_space.shape)
        next_obs, reward, terminated, truncated, info = self.env.step(env_action)
        if not (np.isfinite(reward) and np.all(np.isfinite(next_obs))):
            raise NonFiniteError("the environment returned a non-finite observation or reward")
        transition = Transition(self.obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        self.episode_return += float(reward)
        self.episode_length += 1
        finished = None
        if terminated or truncated:
            finished = Episode(self.episode, self.episode_return, self.episode_length, info)
            self.episode += 1
            self.episode_return, self.episode_length = 0.0, 0
            self.noise.reset()
            self.obs, _ = self.env.reset()
        else:
            self.obs = next_obs
        return transition, finished

    def restart(self) -> None:
        """Abandon the current episode (after a skipped non-finite transition): a fresh one, not counted."""
        self.noise.reset()
        self.obs, _ = self.env.reset()
        self.episode_return, self.episode_length = 0.0, 0
