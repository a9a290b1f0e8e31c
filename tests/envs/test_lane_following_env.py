"""LaneFollowing-v0: the Gymnasium contract, lane pose, episode ends, rewards and bad input."""

from __future__ import annotations

import json
import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ddpg.envs.lane_following import (
    ENV_ID,
    LaneFollowingEnv,
    LanePose,
    SpeedSteeringAction,
    register,
)
from ddpg.envs.lane_following.rewards import OFF_ROAD_PENALTY

# On the "loop" map the top straight (row 0, column 1) spans 0.6 < x < 1.2 with its road centre
# line at y = 1.5; driving east the right lane's centre is at y = 1.38.
EAST_ON_LANE = (0.7, 1.38, 0.0)


def dist_based_reward(pose: LanePose) -> float:
    """Imported by module path in a test; its value identifies the pose it was given."""
    return 1000.0 * pose.dist + 3.0


# Without a spec the checker cannot try other render modes; rgb_array is the one under test.
@pytest.mark.filterwarnings("ignore:.*alternative render modes")
def test_check_env_passes_on_the_unwrapped_env() -> None:
    check_env(LaneFollowingEnv(render_mode="rgb_array"), skip_render_check=False)


def test_observation_space_is_exactly_the_camera_image() -> None:
    env = LaneFollowingEnv(camera_width=40, camera_height=24)
    space = env.observation_space
    assert (space.shape, space.dtype, space.low.min(), space.high.max()) == ((24, 40, 3), np.uint8, 0, 255)


def test_registering_twice_does_not_override_the_registration() -> None:
    register()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Gymnasium warns when an id is registered again
        register()


def test_registered_id_makes_the_env_with_kwargs() -> None:
    register()
    env = gymnasium.make(ENV_ID, map_name="zigzag", max_steps=3)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (64, 64, 3)


def test_same_seed_gives_the_same_episode() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, size=(20, 2))
    runs = []
    for _ in range(2):
        env = LaneFollowingEnv(map_name="udem")
        observation, info = env.reset(seed=7)
        steps = [(observation, info)] + [env.step(action)[::4] for action in actions]
        runs.append(steps)
    for (obs_a, info_a), (obs_b, info_b) in zip(*runs, strict=True):
        assert np.array_equal(obs_a, obs_b) and info_a == info_b


def test_start_is_in_the_right_lane_facing_along_it() -> None:
    env = LaneFollowingEnv(map_name="udem")
    for seed in range(10):
        _, info = env.reset(seed=seed)
        assert abs(info["dist"]) <= 0.03 + 1e-9 and abs(info["angle"]) <= 0.15 + 1e-9 and info["on_road"]


def test_dist_is_positive_left_of_the_lane_centre() -> None:
    env = LaneFollowingEnv()
    _, info = env.reset(options={"pose": (0.7, 1.38 + 0.05, 0.1)})
    assert (info["dist"], info["angle"], info["dot_dir"]) == pytest.approx((0.05, 0.1, math.cos(0.1)))


def test_distance_travelled_is_progress_along_the_lane() -> None:
    env = LaneFollowingEnv()
    env.reset(options={"pose": EAST_ON_LANE})
    for _ in range(10):
        _, _, _, _, info = env.step(np.array([1.0, 1.0]))
    assert info["distance_travelled"] == pytest.approx(10 * 0.6 / 30)
    assert info["speed"] == pytest.approx(0.6)


def test_driving_backwards_loses_distance() -> None:
    env = LaneFollowingEnv()
    env.reset(options={"pose": EAST_ON_LANE})
    for _ in range(5):
        _, _, _, _, info = env.step(np.array([-1.0, -1.0]))
    assert info["distance_travelled"] == pytest.approx(-5 * 0.6 / 30)


def test_leaving_the_road_terminates_with_the_off_road_penalty() -> None:
    env = LaneFollowingEnv()
    env.reset(options={"pose": (0.9, 1.38, math.pi / 2)})  # heading north, across the road onto grass
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(np.array([1.0, 1.0]))
        if terminated or truncated:
            break
    assert (terminated, truncated, info["on_road"], reward) == (True, False, False, OFF_ROAD_PENALTY)


def test_episode_is_truncated_at_max_steps() -> None:
    env = LaneFollowingEnv(max_steps=4)
    env.reset(seed=0)
    ends = [env.step(np.zeros(2))[3] for _ in range(4)]
    assert ends == [False, False, False, True]


def test_reward_by_module_path_receives_the_pose_and_its_value_is_used() -> None:
    env = LaneFollowingEnv(reward=f"{__name__}:dist_based_reward")
    env.reset(options={"pose": EAST_ON_LANE})
    _, reward, _, _, info = env.step(np.array([0.5, 0.3]))
    assert reward == pytest.approx(1000.0 * info["dist"] + 3.0)


def test_callable_reward_receives_a_lane_pose_matching_info() -> None:
    seen = []
    env = LaneFollowingEnv(reward=lambda pose: seen.append(pose) or 0.0)
    env.reset(seed=3)
    _, _, _, _, info = env.step(np.array([0.4, 0.6]))
    pose = seen[0]
    assert isinstance(pose, LanePose) and pose.wheel_velocities == (0.4, 0.6) and pose.dist == info["dist"]


def test_non_finite_reward_names_the_function_and_step() -> None:
    def nan_reward(pose: LanePose) -> float:
        return math.nan if pose.distance_travelled > 0 else 0.0

    env = LaneFollowingEnv(reward=nan_reward)
    env.reset(options={"pose": EAST_ON_LANE})
    env.step(np.array([0.0, 0.0]))
    with pytest.raises(ValueError, match=r"nan_reward.*step 2"):
        env.step(np.array([1.0, 1.0]))


def test_info_is_json_serialisable() -> None:
    _, info = LaneFollowingEnv().reset(seed=0)
    assert json.loads(json.dumps(info))["on_road"] is True


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"map_name": "atlantis"}, r"map_name.*known maps: loop"),
        ({"camera_width": 15}, "camera_width"),
        ({"camera_height": 8}, "camera_height"),
        ({"reward": "fastest"}, r"reward.*'fastest'"),
        ({"reward": "no_such_package_xyz.mod:f"}, r"reward.*no_such_package_xyz\.mod:f"),
        ({"reward": f"{__name__}:missing"}, r"reward.*:missing"),
        ({"max_steps": 0}, "max_steps"),
        ({"render_mode": "ansi"}, "render_mode"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        LaneFollowingEnv(**kwargs)


def test_malformed_map_file_is_rejected_naming_map_name(tmp_path) -> None:
    path = tmp_path / "broken.txt"
    path.write_text("SE EW\nNE EW\n")
    with pytest.raises(ValueError, match="map_name"):
        LaneFollowingEnv(map_name=str(path))


def test_speed_steering_wrapper_maps_straight_ahead_to_equal_wheels() -> None:
    wrapper = SpeedSteeringAction(LaneFollowingEnv())
    assert wrapper.action(np.array([1.0, 0.0])).tolist() == [1.0, 1.0]


def test_speed_steering_wrapper_keeps_the_turn_ratio_when_saturated() -> None:
    left, right = SpeedSteeringAction(LaneFollowingEnv()).action(np.array([1.0, 0.5]))
    assert (right, left / right) == pytest.approx((1.0, 0.5 / 1.5))
