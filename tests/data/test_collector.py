import gymnasium as gym
import numpy as np
import pytest

from ddpg.agent.noise import ActionNoise
from ddpg.config import NoiseConfig
from ddpg.data.collector import Collector, NonFiniteError, vector_env
from tests.helpers import CountingEnv, NaNEnv


def collector(*envs, noise: str = "none", sigma: float = 0.1, skip_nonfinite: bool = False) -> Collector:
    noise = ActionNoise(NoiseConfig(kind=noise, sigma=sigma), 1, np.random.default_rng(0), len(envs))
    vec = vector_env([lambda env=env: env for env in envs])
    return Collector(vec, noise, np.random.default_rng(0), seed=0, skip_nonfinite=skip_nonfinite)


def zeros(n: int = 1, value: float = 0.0) -> np.ndarray:
    return np.full((n, 1), value, np.float32)


def test_truncation_bootstraps_from_final_observation():
    c = collector(gym.wrappers.TimeLimit(CountingEnv(), max_episode_steps=3))
    transitions = [c.step(zeros()).transitions[0][1] for _ in range(4)]
    last = transitions[2]
    assert last.truncated and not last.terminated  # a time limit is not a terminal state
    np.testing.assert_array_equal(last.next_obs, [3, 0])  # the true final observation, episode 0
    np.testing.assert_array_equal(transitions[3].obs, [0, 1])  # then the next episode starts


def test_termination_is_flagged_and_episode_recorded():
    c = collector(CountingEnv(terminate_at=2))
    first = c.step(zeros(value=0.5))
    second = c.step(zeros(value=0.5))
    transition = second.transitions[0][1]
    assert first.episodes == []
    assert transition.terminated and not transition.truncated
    (episode,) = second.episodes
    assert episode.index == 0 and episode.length == 2
    assert episode.ret == pytest.approx(2 * 1.0)  # normalised 0.5 is 1.0 in [-2, 2]
    assert episode.info["t"] == 2  # the final step's info, not the reset's


def test_stored_actions_are_normalised_and_env_actions_rescaled():
    c = collector(CountingEnv())
    transition = c.step(np.array([[-1.0]], np.float32)).transitions[0][1]
    assert transition.action[0] == -1.0 and transition.reward == -2.0


def test_exploration_actions_are_clipped_to_bounds():
    c = collector(CountingEnv(), noise="gaussian", sigma=10.0)
    actions = np.array([c.explore(lambda obs: np.zeros((len(obs), 1), np.float32), t) for t in range(200)])
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
            c.step(zeros())


def test_non_finite_step_is_skipped_and_only_that_env_restarts():
    c = collector(NaNEnv(), CountingEnv(), skip_nonfinite=True)
    results = [c.step(zeros(2)) for _ in range(5)]
    assert results[4].skipped == [0]  # NaNEnv's fifth step
    assert [i for i, _ in results[4].transitions] == [1]
    np.testing.assert_array_equal(c.obs[0], [0, 1])  # env 0 began a new episode, uncounted
    np.testing.assert_array_equal(c.obs[1], [5, 0])  # env 1 went on
    assert c.episode == 0 and c.episode_length.tolist() == [0, 5]


def test_each_env_keeps_its_own_episodes_and_final_observations():
    # Env 0 ends every 2 steps, env 1 every 3: transitions never mix the two envs' observations.
    c = collector(CountingEnv(terminate_at=2), CountingEnv(terminate_at=3))
    ended = []
    for _ in range(6):
        result = c.step(zeros(2, 0.5))
        for _, t in result.transitions:
            assert t.next_obs[0] == t.obs[0] + 1 and t.next_obs[1] == t.obs[1]  # same env, same episode
        ended += [(e.index, e.length) for e in result.episodes]
    # Step 2: env 0 ends (episode 0); step 3: env 1 (1); step 4: env 0 (2); step 6: env 0 then env 1.
    assert ended == [(0, 2), (1, 3), (2, 2), (3, 2), (4, 3)]
    assert c.episode == 5


def test_ou_noise_restarts_only_for_the_env_whose_episode_ended():
    noise = ActionNoise(NoiseConfig(kind="ou", sigma=0.5), 1, np.random.default_rng(0), n_envs=2)
    vec = vector_env([lambda: CountingEnv(terminate_at=2), lambda: CountingEnv()])
    c = Collector(vec, noise, np.random.default_rng(0), seed=0)
    for t in range(2):
        c.step(c.explore(lambda obs: np.zeros((len(obs), 1), np.float32), t))
    assert noise.state[0, 0] == 0.0 and noise.state[1, 0] != 0.0
