"""Duckietown-v0, gym-duckietown's simulator behind our adapter. Without the `duckietown` extra (or the GL
libraries) the tests that need the simulator are skipped, saying what to install."""

import dataclasses
import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ddpg import DDPG, Config
from ddpg.cli import main
from ddpg.config.presets import load_preset
from ddpg.envs import EnvError, make_env
from ddpg.envs.duckietown import ENV_ID, missing
from ddpg.envs.duckietown import simulator as loader
from ddpg.envs.duckietown.controller import ScriptedDriver
from ddpg.envs.lane_following import LaneFollowingEnv, LanePose, resolve_reward
from ddpg.envs.lane_following.controller import drive
from tests.helpers import error_line

MISSING = missing()
needs_simulator = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
SMALL = {"camera_width": 32, "camera_height": 24}


@pytest.fixture(scope="module")
def env():
    if MISSING is not None:
        pytest.skip(str(MISSING))
    made = make_env(ENV_ID, {**SMALL, "domain_rand": True, "max_steps": 40})
    yield made
    made.close()


def run(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for action in actions:
        obs, _, terminated, truncated, _ = env.step(action)
        frames.append(obs)
        if terminated or truncated:
            frames.append(env.reset()[0])
    return np.stack(frames)


ACTIONS = [np.array([0.4, 0.5], np.float32)] * 6 + [np.array([0.6, 0.2], np.float32)] * 6


def test_without_the_simulator_making_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gym_duckietown.simulator", None)
    loader.load.cache_clear()
    try:
        with pytest.raises(EnvError, match=r"needs gym-duckietown .*pip install 'ddpg\[duckietown\]'"):
            make_env(ENV_ID)
    finally:
        loader.load.cache_clear()


def lane_pose(**changes) -> LanePose:
    """A pose at the lane's centre, facing along it, standing still, with `changes`."""
    centred = {
        "dist": 0.0,
        "dot_dir": 1.0,
        "angle": 0.0,
        "speed": 0.0,
        "distance_travelled": 0.0,
        "progress": 0.0,
        "on_road": True,
        "curvature": 0.0,
        "wheel_velocities": (0.0, 0.0),
    }
    return LanePose(**{**centred, **changes})


def test_duckietown_reward_is_the_exercises_and_serves_lane_following_v0_too():
    pose = lane_pose(
        dist=0.02,
        dot_dir=0.9,
        angle=0.45,
        speed=0.3,
        distance_travelled=1.0,
        progress=0.01,
        wheel_velocities=(0.4, 0.5),
        proximity_penalty=-0.05,
    )
    reward = resolve_reward("duckietown")
    assert reward(pose) == pytest.approx(0.3 * 0.9 - 10 * 0.02 + 40 * -0.05)
    assert reward(dataclasses.replace(pose, on_road=False)) == -1000.0
    env = LaneFollowingEnv(reward="duckietown", camera_width=16, camera_height=16)
    env.reset(seed=0)
    _, value, _, _, info = env.step(np.array([0.5, 0.5], np.float32))
    assert value == pytest.approx(info["speed"] * info["dot_dir"] - 10 * abs(info["dist"]))


def test_importing_ddpg_does_not_import_the_simulator():
    # Registration is by name; a fresh interpreter shows what `import ddpg` alone pulls in.
    code = (
        "import sys, ddpg, gymnasium; assert 'Duckietown-v0' in gymnasium.registry; "
        "print('gym_duckietown' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@needs_simulator
def test_check_env_passes(env):
    check_env(env.unwrapped, skip_render_check=True)


@needs_simulator
def test_the_camera_view_renders_what_the_robot_sees_for_videos():
    made = gym.make(ENV_ID, render_mode="rgb_array", render_view="camera", **SMALL)
    try:
        obs, _ = made.reset(seed=3)
        frame = made.render()
        assert frame.shape == (4 * 24, 4 * 32, 3) and np.array_equal(frame[::4, ::4], obs)
        obs = made.step(np.array([0.5, 0.5], np.float32))[0]
        assert np.array_equal(made.render()[::4, ::4], obs)
    finally:
        made.close()
    with pytest.raises(ValueError, match="render_view: expected one of top_down, camera, got 'side'"):
        gym.make(ENV_ID, render_view="side", **SMALL)


@needs_simulator
def test_same_seed_same_observations_and_other_seeds_differ(env):
    first = run(env, 7, ACTIONS)
    assert np.array_equal(run(env, 7, ACTIONS), first)
    assert not np.array_equal(run(env, 8, ACTIONS)[0], first[0])


@needs_simulator
def test_two_simulators_in_one_process_do_not_disturb_each_other(env):
    # Each draws in its own GL context: interleaving them changes nothing.
    other = make_env(ENV_ID, {**SMALL, "domain_rand": True, "max_steps": 40})
    try:
        alone = run(env, 3, ACTIONS[:4])
        env.reset(seed=3)
        other.reset(seed=5)
        interleaved = [env.reset(seed=3)[0]]
        for action in ACTIONS[:4]:
            other.step(action)
            interleaved.append(env.step(action)[0])
        assert np.array_equal(np.stack(interleaved), alone)
    finally:
        other.close()


@needs_simulator
def test_reward_hook_gets_the_lane_pose_that_info_shows_and_its_value_is_the_reward():
    poses = []

    def reward(pose: LanePose) -> float:
        poses.append(pose)
        return 7.0

    made = gym.make(ENV_ID, reward=reward, map_name="loop_empty", **SMALL)
    try:
        assert made.unwrapped.map_name == "loop_empty"
        made.reset(seed=0)
        for _ in range(10):  # the simulated motors answer after 0.15 s
            _, value, _, _, info = made.step(np.array([0.5, 0.5], np.float32))
        assert value == 7.0 and info == vars(poses[-1]) and len(poses) == 10
        assert info["on_road"] and info["progress"] > 0 and info["distance_travelled"] > info["progress"]
    finally:
        made.close()


@needs_simulator
def test_reversing_has_a_negative_speed_and_earns_less_than_standing_still():
    # The simulator's speed is unsigned: without the sign, a robot reversing along its lane earned what
    # driving forward earns under every speed·dot_dir reward, and a run learned to reverse.
    made = make_env(ENV_ID, {**SMALL, "reward": "speed"})
    try:
        totals = {}
        for wheels in (0.4, 0.0, -0.4):
            made.reset(seed=1)
            totals[wheels] = sum(made.step(np.full(2, wheels, np.float32))[1] for _ in range(15))
            speed = made.step(np.full(2, wheels, np.float32))[4]["speed"]
            assert np.sign(speed) == np.sign(wheels)
        assert totals[0.4] > totals[0.0] == 0.0 > totals[-0.4]
    finally:
        made.close()


@needs_simulator
def test_the_presets_reward_pays_driving_the_lane_more_than_standing_still_or_leaving_the_road():
    # Seed 004's lesson: a reward under which the scripted driver earns less than a way out teaches the
    # way out (docs/duckietown.md, "Checking a reward"). The exercise's offset cost fails the check.
    rewards = {
        "preset": resolve_reward(load_preset(ENV_ID)["env"]["reward"]),
        "default": resolve_reward("default"),
    }
    off_road = {name: fn(lane_pose(speed=0.2, on_road=False)) for name, fn in rewards.items()}
    returns = {}
    driver = ScriptedDriver()
    for name, act in (("drive", lambda _, info: driver(info)), ("still", lambda _, info: np.zeros(2))):
        poses: list[LanePose] = []
        record = lambda pose, seen=poses: seen.append(pose) or 0.0  # noqa: E731
        env = gym.make(ENV_ID, reward=record, max_steps=300, **SMALL)
        result = drive(env, act, 1, 1_000_000)  # the first start the benchmarks evaluate on
        assert result["left_road"] == [False] and len(poses) == 300
        returns[name] = {fn: sum(map(rewards[fn], poses)) for fn in rewards}
    assert returns["drive"]["preset"] > max(returns["still"]["preset"], off_road["preset"])
    assert returns["drive"]["default"] < off_road["default"]


@needs_simulator
def test_leaving_the_road_terminates_with_the_simulators_penalty():
    made = make_env(ENV_ID, SMALL)
    try:
        made.reset(seed=0)
        for _ in range(300):  # spinning on the spot with a drift ends off the road
            _, reward, terminated, truncated, info = made.step(np.array([1.0, 0.3], np.float32))
            if terminated or truncated:
                break
        assert terminated and not info["on_road"] and reward == -1000.0
    finally:
        made.close()


@needs_simulator
def test_three_hundred_steps_of_ddpg_from_pixels_in_two_subprocesses(tmp_path):
    config = Config(
        env_id=ENV_ID,
        env={**SMALL, "max_steps": 60, "action": "steering"},
        n_envs=2,
        vectorization="async",
        hidden_sizes=[16, 16],
        conv_channels=[4, 4],
        conv_strides=[2, 1],
        share_encoder=True,
        batch_size=8,
        buffer_size=1000,
        learning_starts=100,
        eval_every=10_000,
        eval_episodes=1,
        log_every=50,
        progress=False,
        video=False,
    )
    agent = DDPG(config=config)
    summary = agent.learn(300, run_dir=tmp_path / "run")
    assert agent.updates > 0 and agent.buffer.__class__.__name__ == "FrameReplayBuffer"
    assert np.isfinite(summary["final_eval_mean_return"])


@needs_simulator
def test_lane_pose_grows_to_the_left_as_lane_following_v0s_does(env):
    # The simulator's own dist and angle grow to the right; the adapter turns them round.
    env.reset(seed=0)
    sim = env.unwrapped.simulator
    point, tangent = sim.closest_curve_point(sim.cur_pos, sim.cur_angle)
    heading = np.arctan2(-tangent[2], tangent[0])
    left = -np.cross(tangent, [0.0, 1.0, 0.0])  # the simulator's ground plane has z pointing backwards
    sim.cur_pos, sim.cur_angle = point + 0.05 * left, heading + 0.2
    pose = env.unwrapped._make_lane_pose(None, 0.0, (0.0, 0.0))
    assert pose.dist == pytest.approx(0.05, abs=1e-6) and pose.angle == pytest.approx(0.2, abs=1e-6)


@needs_simulator
def test_scripted_driver_keeps_to_the_road_and_reports_as_json(capsys):
    assert main(["duckietown", "reference", "--episodes", "2", "--set", "env.max_steps=150", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["map"] == "loop_empty" and report["left_road"] == [False, False]
    assert report["lane_keeping_rate"] == 1.0 and min(report["distance_travelled"]) > 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "env.action=steering"], "action: the scripted driver sets the wheels"),
        (["--set", "env.nope=1"], "--set: DuckietownEnv.__init__() got an unexpected keyword argument"),
        # Without the simulator, what to install instead.
        (["--set", "env.map_name=zzz"], "map_name: unknown map 'zzz'" if MISSING is None else "pip install"),
    ],
)
def test_reference_bad_input_is_one_error_line_exit_2(args, message, capsys):
    assert main(["duckietown", "reference", "--episodes", "1", *args]) == 2
    assert message in error_line(capsys)
