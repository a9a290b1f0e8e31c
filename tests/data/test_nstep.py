import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.agent.learner import critic_target
from ddpg.data.nstep import NStepAggregator
from ddpg.types import Transition
from tests.helpers import CountingEnv

GAMMA = 0.5


def step(t: int, reward: float, terminated: bool = False, truncated: bool = False) -> Transition:
    return Transition(np.full(1, t), np.zeros(1), reward, np.full(1, t + 1), terminated, truncated)


def target(t, next_q: float = 10.0) -> float:
    """y = r + discount · (1 − terminated) · Q', the learner's formula, for a constant Q'."""
    y = critic_target(
        torch.tensor([t.reward]), torch.tensor([float(t.terminated)]), torch.tensor([next_q]), t.discount
    )
    return y.item()


def test_mid_episode_transition_sums_n_discounted_rewards_and_bootstraps_with_gamma_to_the_n():
    agg = NStepAggregator(3, GAMMA)
    assert agg.push(step(0, 1.0)) == [] and agg.push(step(1, 2.0)) == []
    (t,) = agg.push(step(2, 4.0))
    assert (t.obs[0], t.next_obs[0], t.terminated, t.discount) == (0, 3, False, 0.125)
    assert target(t) == 1.0 + 0.5 * 2.0 + 0.25 * 4.0 + 0.125 * 10.0


def test_termination_inside_the_window_stops_the_sum_and_does_not_bootstrap():
    agg = NStepAggregator(3, GAMMA)
    agg.push(step(0, 1.0))
    first, second = agg.push(step(1, 2.0, terminated=True))
    assert (first.obs[0], first.next_obs[0], first.terminated) == (0, 2, True)
    assert target(first) == 1.0 + 0.5 * 2.0
    assert (second.obs[0], second.terminated) == (1, True)
    assert target(second) == 2.0


def test_truncation_inside_the_window_bootstraps_from_the_final_observation_with_gamma_to_the_k():
    agg = NStepAggregator(3, GAMMA)
    agg.push(step(0, 1.0))
    first, second = agg.push(step(1, 2.0, truncated=True))
    assert (first.next_obs[0], first.terminated, first.discount) == (2, False, 0.25)
    assert target(first) == 1.0 + 0.5 * 2.0 + 0.25 * 10.0
    assert (second.next_obs[0], second.discount) == (2, 0.5)
    assert target(second) == 2.0 + 0.5 * 10.0


def test_window_never_spans_two_episodes():
    agg = NStepAggregator(3, GAMMA)
    agg.push(step(0, 1.0))
    agg.push(step(1, 1.0, truncated=True))
    assert agg.push(step(0, 8.0)) == [] and agg.push(step(1, 8.0)) == []
    (t,) = agg.push(step(2, 8.0))
    assert t.reward == 8.0 * (1 + 0.5 + 0.25)


def test_trainer_stores_n_step_transitions_with_their_discount():
    env = CountingEnv(terminate_at=4)  # reward = action[0] in env units; obs = [t, episode]
    config = Config(
        env_id="counting", n_step=3, gamma=GAMMA, learning_starts=100, eval_episodes=0, progress=False
    ).replace(hidden_sizes=[8, 8], buffer_size=100)
    agent = DDPG(env, config)
    agent.learn(8, run_dir=None)  # two episodes of 4 steps, all emitted at the terminations
    arrays = agent.buffer.arrays()
    assert arrays["obs"][:, 0].tolist() == [0, 1, 2, 3] * 2
    assert arrays["next_obs"][:, 0].tolist() == [3, 4, 4, 4] * 2
    assert arrays["discount"].tolist() == [0.125, 0.125, 0.25, 0.5] * 2
    assert arrays["terminated"].tolist() == [0, 1, 1, 1] * 2
    rewards = arrays["reward"]
    per_step = arrays["action"][:, 0] * 2.0  # CountingEnv's action range is [-2, 2]
    assert rewards[3] == pytest.approx(per_step[3])
    assert rewards[0] == pytest.approx(per_step[0] + 0.5 * per_step[1] + 0.25 * per_step[2])
