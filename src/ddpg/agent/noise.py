"""Exploration noise and schedules.

Noise is drawn in normalised action units (half the action range is 1), so one σ means the same thing
for every environment. The processes hold their state explicitly and draw from a generator they are
given, which keeps runs reproducible and the state easy to save.
"""

from __future__ import annotations

import math

import numpy as np

from ddpg.config import NoiseConfig, Schedule


def schedule_factor(schedule: Schedule, t: int) -> float:
    """The multiplier at time `t` (steps or episodes, as the schedule's unit says)."""
    if schedule.kind == "constant":
        return 1.0
    if schedule.kind == "linear":
        frac = min(t / schedule.duration, 1.0)
        return 1.0 + frac * (schedule.final - 1.0)
    return max(schedule.rate**t, schedule.final)


def ou_step(
    x: np.ndarray, theta: float, mu: float, sigma: float, dt: float, rng: np.random.Generator
) -> np.ndarray:
    """One Euler–Maruyama step of dx = θ(μ − x)dt + σ dW."""
    return x + theta * (mu - x) * dt + sigma * math.sqrt(dt) * rng.standard_normal(x.shape)


class ActionNoise:
    """Gaussian, Ornstein–Uhlenbeck or no noise, with a scale schedule over steps or episodes."""

    def __init__(
        self, config: NoiseConfig, action_dim: int, rng: np.random.Generator, n_envs: int = 1
    ) -> None:
        self.config = config
        self.rng = rng
        self.state = np.full((n_envs, action_dim), config.mu, dtype=np.float64)  # a process per env

    def reset(self, env: int | None = None) -> None:
        """Start of an episode (of env `env`, or of all): the OU process restarts at its mean (paper,
        Algorithm 1)."""
        self.state[slice(None) if env is None else env] = self.config.mu

    def scale(self, step: int, episode: int) -> float:
        t = step if self.config.schedule.unit == "step" else episode
        return schedule_factor(self.config.schedule, t)

    def sample(self, step: int, episode: int) -> np.ndarray:
        c = self.config
        if c.kind == "none":
            return np.zeros_like(self.state, dtype=np.float32)
        if c.kind == "ou":
            self.state = ou_step(self.state, c.theta, c.mu, c.sigma, c.dt, self.rng)
            value = self.state
        else:
            value = c.mu + c.sigma * self.rng.standard_normal(self.state.shape)
        return (self.scale(step, episode) * value).astype(np.float32)
