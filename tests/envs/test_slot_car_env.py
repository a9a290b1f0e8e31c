import json
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker

from ddpg.envs.slot_car import ENV_ID, register
from ddpg.envs.slot_car.env import OBSERVATIONS, SlotCarEnv

INFO_KEYS = {"lap_time", "best_lap_time", "laps_completed", "crashes", "speed", "lateral_acceleration"}


@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_check_env_passes(observation):
    register()
    env = gym.make(ENV_ID, track="oval", observation=observation, render_mode="rgb_array").unwrapped
    # The generic render check would also open the matplotlib window of the "human" mode.
    check_env(env, skip_render_check=True)
    env_render_passive_checker(env)


def test_gym_make_builds_env_from_yaml_values():
    register()
    register()  # idempotent
    env = gym.make(
        ENV_ID,
        track={"points": [[0, 0], [2, 0], [2, 1], [0, 1]], "name": "box"},
        observation="lookahead",
        lookahead=[0, 0.5, 1],
        on_crash="reset",
        max_laps=3,
        max_time_s=10,
        physics={"mass": "0.1", "grip": 25},
        pixel_size=[32, 48],
    )
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.track.name == "box"
    assert obs.shape == (4,)


def test_registration_has_no_step_limit_because_env_truncates_on_simulated_time():
    register()
    assert gym.spec(ENV_ID).max_episode_steps is None


def rollout(env, actions, seed=0, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def same(a, b):
    return json.dumps(a, default=lambda x: x.tolist()) == json.dumps(b, default=lambda x: x.tolist())


def test_same_seed_gives_identical_trajectories():
    actions = np.random.default_rng(1).uniform(-1, 1, size=(200, 1))
    a = rollout(SlotCarEnv(track="grand_prix"), actions, seed=7, options={"random_start": True})
    b = rollout(SlotCarEnv(track="grand_prix"), actions, seed=7, options={"random_start": True})
    assert same(a, b)


def test_random_start_depends_on_seed():
    env = SlotCarEnv(track="grand_prix")
    starts = {env.reset(seed=s, options={"random_start": True})[1]["track_position"] for s in range(5)}
    assert len(starts) == 5


@pytest.mark.parametrize("observation", OBSERVATIONS)
def test_observations_stay_inside_observation_space(observation):
    env = SlotCarEnv(track="figure8", observation=observation, on_crash="reset", max_time_s=5)
    actions = np.random.default_rng(0).choice([-1.0, 0.3, 1.0], size=(300, 1))
    first, *steps = rollout(env, actions, options={"start_speed": 20.0})
    assert env.observation_space.contains(first)
    for obs, *_ in steps:
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize(("raw", "clipped"), [(5.0, 1.0), (-7.0, -1.0)])
def test_actions_outside_range_act_like_clipped_actions(raw, clipped):
    env = SlotCarEnv(track="oval")
    a = rollout(env, [np.array([raw], dtype=np.float32)] * 30, options={"start_speed": 3.0})
    b = rollout(env, [np.array([clipped], dtype=np.float32)] * 30, options={"start_speed": 3.0})
    assert same(a, b)


def test_info_has_all_keys_after_reset_and_step():
    env = SlotCarEnv()
    _, info = env.reset(seed=0)
    _, _, _, _, step_info = env.step([0.5])
    assert INFO_KEYS <= info.keys() and INFO_KEYS <= step_info.keys()


def test_info_is_json_serialisable():
    env = SlotCarEnv(max_laps=1, max_time_s=None)
    info = rollout(env, [[0.5]] * 1000)[-1][-1]
    assert json.loads(json.dumps(info))["laps_completed"] == 1


def test_lap_times_are_infinite_until_a_lap_is_completed():
    env = SlotCarEnv()
    _, info = env.reset(seed=0)
    assert math.isinf(info["lap_time"]) and math.isinf(info["best_lap_time"])


def drive_until_crash(env):
    env.reset(seed=0)
    while True:
        before = env.state.distance, env.state.time
        _, reward, terminated, _truncated, info = env.step([1.0])
        if info["crashes"]:
            return before, reward, terminated, info


def test_crash_with_reset_restarts_from_rest_at_crash_point():
    env = SlotCarEnv(track="oval", on_crash="reset")
    (distance, _), _, terminated, info = drive_until_crash(env)
    assert not terminated
    assert info["speed"] == 0.0
    assert 0.0 < env.state.distance - distance < 7.0 * env.params.dt
    assert abs(env.track.curvature_at(env.state.distance)) > 1.0  # in the bend, where it crashed


def test_crash_with_reset_adds_time_penalty():
    env = SlotCarEnv(track="oval", on_crash="reset", crash_time_s=3.0)
    (_, time_before), _, _, info = drive_until_crash(env)
    assert 3.0 < info["time"] - time_before <= 3.0 + env.params.dt + 1e-12


def test_crash_with_reset_lap_time_includes_penalty():
    fast = SlotCarEnv(track="oval", on_crash="reset", crash_time_s=3.0)
    rollout(fast, [[1.0]] * 400)
    assert fast.state.crashes >= 1
    assert fast.state.lap_times[0] > 3.0 + 2.0


def test_crash_with_terminate_ends_episode_with_penalty():
    env = SlotCarEnv(track="oval", on_crash="terminate", crash_penalty=5.0)
    _, reward, terminated, _ = drive_until_crash(env)
    assert terminated and reward < -4.0


def test_time_limit_truncates_episode():
    env = SlotCarEnv(track="oval", max_time_s=1.0)
    steps = rollout(env, [[0.2]] * 100)
    assert len(steps) - 1 == 60 and steps[-1][3] and not steps[-1][2]


def test_lap_limit_truncates_after_last_lap():
    env = SlotCarEnv(track="oval", max_time_s=None, max_laps=2)
    steps = rollout(env, [[0.5]] * 2000)
    *_, truncated, info = steps[-1]
    assert truncated and info["laps_completed"] == 2


def test_flying_lap_is_faster_than_standing_lap():
    env = SlotCarEnv(track="oval", max_time_s=None, max_laps=2)
    rollout(env, [[0.5]] * 2000)
    standing, flying = env.state.lap_times
    assert flying < standing and env.state.best_lap_time == flying


def test_reward_is_progress_over_top_speed_distance():
    env = SlotCarEnv(track="oval")
    env.reset(seed=0, options={"start_speed": 2.0})
    _, reward, *_ = env.step([0.0])
    assert reward == pytest.approx((env.state.distance) / (env.top_speed * env.params.dt))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"track": "nurburgring"}, r"track: unknown track .* oval, figure8, grand_prix"),
        ({"observation": "lidar"}, r"observation: must be one of"),
        ({"on_crash": "explode"}, r"on_crash: must be one of"),
        ({"max_time_s": 0}, r"max_time_s: must be positive"),
        ({"max_laps": -2}, r"max_laps: must be a positive integer"),
        ({"max_laps": 2.5}, r"max_laps: must be a positive integer, got 2.5"),
        ({"lookahead": []}, r"lookahead: must be a non-empty list"),
        ({"lookahead": [0.5, -1]}, r"lookahead: distances must be >= 0"),
        ({"pixel_size": [0, 64]}, r"pixel_size: must be an integer of at least 8, got 0"),
        ({"render_size": 100.5}, r"render_size: must be an integer of at least 8, got 100.5"),
        ({"crash_penalty": "lots"}, r"crash_penalty: must be a number"),
        ({"physics": {"mass": -0.1}}, r"physics\.mass: must be positive"),
        ({"render_mode": "ascii"}, r"render_mode: must be one of"),
    ],
)
def test_bad_env_argument_raises_value_error_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlotCarEnv(**kwargs)


def test_unknown_reset_option_raises():
    with pytest.raises(ValueError, match="options: unknown keys"):
        SlotCarEnv().reset(options={"teleport": 1})
