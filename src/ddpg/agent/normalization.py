"""Observations rescaled by the running mean and standard deviation of those seen so far.

State observations mix units (Hopper: angles near 1, joint velocities near 10), and a network's first
layer learns slowly on inputs of very different scales. OpenAI Baselines' DDPG (`normalize_observations`)
and Stable-Baselines3's `VecNormalize` rescale them by running statistics; this is the same map,
(obs − mean) / √(var + ε) clipped to ±clip. The replay buffer keeps the raw observations, so a batch is
rescaled with the statistics of the moment it is drawn, and acting and learning always agree.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-8


class ObservationNormalizer:
    """Running per-feature mean and variance (float64), merged batch by batch (Chan et al. 1979, exact
    for any split of the data), and the rescaling they define. Before any observation the mean is 0 and
    the variance 1, so it only clips."""

    def __init__(self, shape: tuple[int, ...], clip: float) -> None:
        self.clip = clip
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 0

    def update(self, obs: np.ndarray) -> None:
        """Merge a batch of observations, shape (n, *shape), into the statistics."""
        obs = np.asarray(obs, dtype=np.float64)
        n = obs.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = obs.mean(axis=0), obs.var(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.var = m2 / total
        self.count = total

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + EPSILON)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "var": self.var, "count": np.array(self.count, dtype=np.int64)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        mean, var = np.asarray(state["mean"], np.float64), np.asarray(state["var"], np.float64)
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"observation statistics of shape {mean.shape}, expected {self.mean.shape}")
        self.mean, self.var, self.count = mean, var, int(state["count"])
