"""Differential-drive (Duckiebot-like) kinematics with exact unicycle integration."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RobotParams:
    wheel_base: float = 0.102  # metres between the wheels
    max_wheel_speed: float = 0.6  # m/s of a wheel at action 1
    dt: float = 1 / 30  # seconds per control step


@dataclass(frozen=True)
class RobotPose:
    x: float
    y: float
    heading: float  # radians, counter-clockwise from east


def wheels_to_unicycle(left: float, right: float, params: RobotParams) -> tuple[float, float]:
    """Forward speed (m/s) and turn rate (rad/s, left positive) for wheel commands in [-1, 1]."""
    v_left, v_right = left * params.max_wheel_speed, right * params.max_wheel_speed
    return (v_left + v_right) / 2, (v_right - v_left) / params.wheel_base


def integrate(pose: RobotPose, speed: float, turn_rate: float, dt: float) -> RobotPose:
    """Exact solution for constant speed and turn rate over dt: an arc, or a line when not turning."""
    heading = pose.heading + turn_rate * dt
    wrapped = math.remainder(heading, math.tau)
    if abs(turn_rate) < 1e-9:
        distance = speed * dt
        return RobotPose(
            pose.x + distance * math.cos(pose.heading), pose.y + distance * math.sin(pose.heading), wrapped
        )
    radius = speed / turn_rate
    return RobotPose(
        pose.x + radius * (math.sin(heading) - math.sin(pose.heading)),
        pose.y - radius * (math.cos(heading) - math.cos(pose.heading)),
        wrapped,
    )
