"""Differential-drive kinematics."""

from __future__ import annotations

import math

import pytest

from ddpg.envs.lane_following.robot import RobotParams, RobotPose, integrate, wheels_to_unicycle

PARAMS = RobotParams()


def _drive(pose: RobotPose, left: float, right: float, steps: int) -> RobotPose:
    speed, turn_rate = wheels_to_unicycle(left, right, PARAMS)
    for _ in range(steps):
        pose = integrate(pose, speed, turn_rate, PARAMS.dt)
    return pose


def test_equal_wheel_speeds_drive_a_straight_line_of_speed_times_time() -> None:
    end = _drive(RobotPose(1.0, 2.0, 0.3), 1.0, 1.0, steps=30)
    travelled = PARAMS.max_wheel_speed * 30 * PARAMS.dt
    assert (end.x, end.y, end.heading) == pytest.approx(
        (1.0 + travelled * math.cos(0.3), 2.0 + travelled * math.sin(0.3), 0.3)
    )


def test_opposite_wheel_speeds_rotate_in_place() -> None:
    end = _drive(RobotPose(1.0, 2.0, 0.0), -0.5, 0.5, steps=3)
    turn = 3 * PARAMS.dt * PARAMS.max_wheel_speed / PARAMS.wheel_base
    assert (end.x, end.y, end.heading) == pytest.approx((1.0, 2.0, turn))


def test_constant_turn_closes_a_full_circle_as_the_integration_is_exact() -> None:
    speed, turn_rate = wheels_to_unicycle(0.4, 0.6, PARAMS)
    dt = 2 * math.pi / turn_rate / 40
    pose = RobotPose(0.5, 0.5, 1.0)
    for _ in range(40):
        pose = integrate(pose, speed, turn_rate, dt)
    assert (pose.x, pose.y, math.cos(pose.heading - 1.0)) == pytest.approx((0.5, 0.5, 1.0), abs=1e-9)
