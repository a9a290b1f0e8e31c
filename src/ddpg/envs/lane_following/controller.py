"""A scripted reference driver that reads the privileged lane pose instead of the camera."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.config.sections import positive_int
from ddpg.envs.lane_following.env import LaneFollowingEnv
from ddpg.envs.lane_following.robot import RobotParams


@dataclass(frozen=True)
class ScriptedController:
    """PD steering on the lane pose with the lane's curvature as feed-forward.

    Called with an env's ``info`` (or ``asdict(LanePose)``), returns wheel velocities. The gains
    place both poles of the linearised lateral dynamics near -4 rad/s at the cruising speed.
    """

    cruise: float = 0.5  # fraction of full speed
    dist_gain: float = 50.0  # rad/s of turn per metre of lateral error, per m/s of speed
    angle_gain: float = 8.0  # rad/s of turn per radian of heading error
    robot: RobotParams = field(default_factory=RobotParams)

    def __call__(self, info: Mapping[str, Any]) -> np.ndarray:
        speed = self.cruise * self.robot.max_wheel_speed
        # Feed-forward follows the lane's bend; feedback pulls the robot back onto its centre.
        turn_rate = (
            speed * info["curvature"]
            - self.dist_gain * speed * info["dist"]
            - self.angle_gain * info["angle"]
        )
        difference = turn_rate * self.robot.wheel_base / self.robot.max_wheel_speed
        wheels = np.array([self.cruise - difference / 2, self.cruise + difference / 2])
        return np.clip(wheels, -1.0, 1.0).astype(np.float32)


def reference(episodes: int = 5, seed: int = 0, **env_kwargs: Any) -> dict[str, Any]:
    """Distance travelled along the lane by the scripted controller, per episode and summarised."""
    check_episodes(episodes)
    env = LaneFollowingEnv(**env_kwargs)
    controller = ScriptedController(robot=env.robot)
    result = drive(env, lambda _, info: controller(info), episodes, seed)
    return {"map": env_kwargs.get("map_name", "loop"), **result}


def check_episodes(episodes: Any) -> None:
    positive_int("episodes", episodes)


Act = Callable[[Any, Mapping[str, Any]], np.ndarray]  # (observation, info) → action


def drive(
    env: gym.Env,
    act: Act,
    episodes: int,
    seed: int,
    observe: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Episode i from `reset(seed=seed + i)`, each action `act(observation, info)` (a scripted driver
    reads the lane pose in `info`, a learned policy the observation); `observe`, if given, gets every
    step's `info`. The env is closed after. Per episode: the distance travelled along the lane, the
    steps, whether the robot left the road, and the return under the env's reward (a reward under which
    this driving returns less than leaving the road at once teaches a policy to leave it:
    docs/duckietown.md, "Checking a reward")."""
    distances, steps, left_road, returns = [], [], [], []
    try:
        for episode in range(episodes):
            obs, info = env.reset(seed=seed + episode)
            terminated = truncated = False
            count, total = 0, 0.0
            while not (terminated or truncated):
                obs, reward, terminated, truncated, info = env.step(act(obs, info))
                count, total = count + 1, total + float(reward)
                if observe is not None:
                    observe(info)
            distances.append(float(info["distance_travelled"]))
            steps.append(count)
            left_road.append(bool(terminated))
            returns.append(total)
    finally:
        env.close()
    return {
        "episodes": episodes,
        "seed": seed,
        "distance_travelled": distances,
        "steps": steps,
        "left_road": left_road,
        "returns": returns,
        "mean": float(np.mean(distances)),
        "std": float(np.std(distances)),
        "unit": "m",
    }
