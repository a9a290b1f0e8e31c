import gymnasium as gym
import numpy as np
import pytest

from ddpg.collector import Collector, NonFiniteError
from ddpg.config import NoiseConfig
from ddpg.noise import ActionNoise

from .helpers import CountingEnv, NaNEnv


def collector(env) -> Collector:
    noise = ActionNoise(NoiseConfig(kind="none"), 1, np.random.default_rng(0))
    return Collector(env, noise, np.random.default_rng(0), seed=0)


def test_truncation_bootstraps_from_final_observation():
    c = collector(gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=3))
    transitions = [c.step(np.zeros(1, np.float32))[0] for _ in range(4)]
    last = transitions[2]
    assert last.truncated and not last.terminated  # a time limit is not a terminal state
    np.testing.assert_array_equal(last.next_obs, [3, 0])  # the true final observation, episode 0
    np.testing.assert_array_equal(transitions[3].obs, [0, 1])  # then the next episode starts


def test_termination_is_flagged_and_episode_recorded():
    c = collector(CountingEnv(terminate_at=2))
    _, first = c.step(np.full(1, 0.5, np.float32))
    transition, episode = c.step(np.full(1, 0.5, np.float32))
    assert first is None
    assert transition.terminated and not transition.truncated
    assert episode.index == 0 and episode.length == 2
    assert episode.ret == pytest.approx(2 * 1.0)  # normalised 0.5 is 1.0 in [-2, 2]


def test_stored_actions_are_normalised_and_env_actions_rescaled():
    c = collector(CountingEnv())
    transition, _ = c.step(np.array([-1.0], np.float32))
    assert transition.action[0] == -1.0 and transition.reward == -2.0


def test_exploration_actions_are_clipped_to_bounds():
    noise = ActionNoise(NoiseConfig(kind="gaussian", sigma=10.0), 1, np.random.default_rng(0))
    c = Collector(CountingEnv(), noise, np.random.default_rng(0), seed=0)
    actions = np.array([c.explore(lambda obs: np.zeros(1, np.float32), t) for t in range(200)])
    assert actions.min() == -1.0 and actions.max() == 1.0


def test_warm_up_actions_are_uniform_over_the_action_space():
    c = collector(CountingEnv())
    actions = np.array([c.explore(None, t)[0] for t in range(5000)])
    assert actions.min() >= -1 and actions.max() <= 1
    assert abs(actions.mean()) < 0.05 and actions.std() == pytest.approx(1 / np.sqrt(3), rel=0.05)


def test_non_finite_reward_is_caught():
    c = collector(NaNEnv())
    with pytest.raises(NonFiniteError):
        for _ in range(10):
            c.step(np.zeros(1, np.float32))
