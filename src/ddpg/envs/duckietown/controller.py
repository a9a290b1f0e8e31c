"""A scripted lane-following driver for Duckietown-v0 that reads the privileged lane pose, not the camera."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ddpg.envs.lane_following.controller import check_episodes, drive
from ddpg.envs.lane_following.env import speed_steering_to_wheels


@dataclass(frozen=True)
class ScriptedDriver:
    """PD steering on the lane pose, with the lane's curvature as feed-forward, at a constant speed.

    Called with an env's ``info``, returns wheel duty cycles (the env's `action="wheels"`). Gains are per
    metre of lateral error, per radian of heading error and per 1/m of curvature, in units of steering.
    """

    # Tuned on loop_empty (6 of 6 300-step episodes kept the road). Some of the simulator's starts, at the
    # road's edge heading out, leave it within 15 steps whatever the gains (docs/duckietown.md).
    cruise: float = 0.5  # the (speed, steering) action's speed, a fraction of the full duty cycle
    dist_gain: float = 6.0
    angle_gain: float = 1.5
    curvature_gain: float = 0.3

    def __call__(self, info: Mapping[str, Any]) -> np.ndarray:
        steering = (
            self.curvature_gain * info["curvature"]
            - self.dist_gain * info["dist"]
            - self.angle_gain * info["angle"]
        )
        return speed_steering_to_wheels(np.array([self.cruise, steering]))


def reference(episodes: int = 5, seed: int = 0, **env_kwargs: Any) -> dict[str, Any]:
    """Distance the scripted driver travels along the lane per episode, and the share of episodes in
    which it kept to the road."""
    from ddpg.envs.duckietown.env import DuckietownEnv  # imports the simulator

    check_episodes(episodes)
    if env_kwargs.get("action", "wheels") != "wheels":
        raise ValueError("action: the scripted driver sets the wheels; leave env.action as 'wheels'")
    env = DuckietownEnv(**env_kwargs)
    driver = ScriptedDriver()
    result = drive(env, lambda _, info: driver(info), episodes, seed)
    kept = 1.0 - float(np.mean(result["left_road"]))
    return {"map": env.map_name, **result, "lane_keeping_rate": kept}
