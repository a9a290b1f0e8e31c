"""Reward engineering: a reward is any function of the robot's lane pose.

Write ``def my_reward(pose: LanePose) -> float`` and pass it to the environment as a callable or
as ``reward="package.module:my_reward"``; built-ins are chosen by name (see ``BUILTIN_REWARDS``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from ddpg.envs import EnvError

OFF_ROAD_PENALTY = -10.0
DUCKIETOWN_OFF_ROAD_PENALTY = -1000.0  # gym-duckietown's REWARD_INVALID_POSE


class RewardError(EnvError):
    """A reward function cannot be imported or returned a non-finite value."""


@dataclass(frozen=True)
class LanePose:
    """Where the robot is relative to its lane, after a step.

    ``dist`` is the signed distance (metres) from the centre of the right lane, positive when the
    robot is left of it (towards the yellow centre line). ``angle`` is the heading error in radians,
    positive when the robot points left of the lane direction; ``dot_dir`` is its cosine.
    """

    dist: float
    dot_dir: float
    angle: float
    speed: float  # forward speed, m/s (negative when reversing)
    distance_travelled: float  # metres of progress along the lane since reset
    progress: float  # metres of progress along the lane during the last step
    on_road: bool
    curvature: float  # of the lane centre at the robot, 1/m, positive for left turns
    wheel_velocities: tuple[float, float]  # the clipped action, (left, right)
    # Duckietown-v0's overlap of the robot's safety circle with obstacles' (<= 0); 0 where none are.
    proximity_penalty: float = 0.0


RewardFn = Callable[[LanePose], float]


def _speed_less_offset(pose: LanePose, per_metre: float) -> float:
    if not pose.on_road:
        return OFF_ROAD_PENALTY
    return pose.speed * pose.dot_dir - per_metre * abs(pose.dist)


def default_reward(pose: LanePose) -> float:
    """Drive fast along the lane, stay near its centre."""
    return _speed_less_offset(pose, 10.0)


def centering_reward(pose: LanePose) -> float:
    """Stay centred and aligned with the lane, whatever the speed."""
    if not pose.on_road:
        return OFF_ROAD_PENALTY
    return pose.dot_dir - 10.0 * abs(pose.dist)


def speed_reward(pose: LanePose) -> float:
    """Speed along the lane only."""
    if not pose.on_road:
        return OFF_ROAD_PENALTY
    return pose.speed * pose.dot_dir


def lane_reward(pose: LanePose) -> float:
    """Speed along the lane, less 2 per metre off its centre: `default` with a fifth of its offset cost.
    On Duckietown-v0 `default`'s 10 per metre outweighs what driving earns (docs/duckietown.md,
    "Checking a reward"); with none (`speed`), policies drove in the left lane."""
    return _speed_less_offset(pose, 2.0)


def duckietown_reward(pose: LanePose) -> float:
    """gym-duckietown's reward as seed 004 computes it (with the robot's measured speed): `default`
    plus 40 times the proximity penalty, and the simulator's -1000 for leaving the road."""
    if not pose.on_road:
        return DUCKIETOWN_OFF_ROAD_PENALTY
    return default_reward(pose) + 40.0 * pose.proximity_penalty


BUILTIN_REWARDS: dict[str, RewardFn] = {
    "default": default_reward,
    "centering": centering_reward,
    "speed": speed_reward,
    "lane": lane_reward,
    "duckietown": duckietown_reward,
}


def _import_reward(spec: str) -> RewardFn:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise RewardError(
            f"reward: {spec!r} is neither a built-in ({', '.join(BUILTIN_REWARDS)}) nor 'module:function'"
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise RewardError(f"reward: cannot import {spec!r}: {error}") from error
    if not callable(function):
        raise RewardError(f"reward: {spec!r} is not callable")
    return function


def resolve_reward(reward: str | RewardFn) -> RewardFn:
    """A reward function from a built-in name, a 'package.module:function' path or a callable."""
    if callable(reward):
        return reward
    if not isinstance(reward, str):
        raise ValueError(f"reward: expected a name, 'module:function' or a callable, got {reward!r}")
    if reward in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[reward]
    return _import_reward(reward)


def checked_reward(function: RewardFn, pose: LanePose, step: int) -> float:
    value = float(function(pose))
    if not math.isfinite(value):
        name = getattr(function, "__qualname__", repr(function))
        raise RewardError(f"reward: {name} returned {value} at step {step}")
    return value
