"""The scripted reference controller drives every built-in map."""

from __future__ import annotations

import json

import pytest

from ddpg.envs.lane_following import BUILTIN_MAPS, LaneFollowingEnv, ScriptedController, reference


@pytest.mark.parametrize("map_name", sorted(BUILTIN_MAPS))
def test_scripted_controller_completes_an_episode_on_the_road(map_name: str) -> None:
    env = LaneFollowingEnv(map_name=map_name)
    controller = ScriptedController()
    _, info = env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(controller(info))
    assert not terminated
    assert info["distance_travelled"] > 0.8 * env.max_steps * env.robot.dt * 0.5 * env.robot.max_wheel_speed


def test_reference_reports_distance_per_episode_as_json() -> None:
    report = json.loads(json.dumps(reference(episodes=2, seed=0, map_name="zigzag", max_steps=60)))
    assert len(report["distance_travelled"]) == 2
    assert report["mean"] == pytest.approx(sum(report["distance_travelled"]) / 2)
    assert report["std"] >= 0 and report["left_road"] == [False, False]


def test_reference_returns_are_the_env_rewards_summed() -> None:
    # What a user checks a reward with: does the scripted driving earn more than leaving the road?
    report = reference(episodes=2, seed=0, map_name="zigzag", max_steps=60, reward=lambda pose: 1.0)
    assert report["returns"] == [60.0, 60.0]
    default = reference(episodes=2, seed=0, map_name="zigzag", max_steps=60)
    assert all(0 < r < 60 for r in default["returns"])  # speed along the lane, less its offset


def test_reference_rejects_a_non_positive_episode_count() -> None:
    with pytest.raises(ValueError, match="episodes"):
        reference(episodes=0)
