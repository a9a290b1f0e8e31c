import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.agent.normalization import ObservationNormalizer
from ddpg.config import ConfigError
from ddpg.run.loop import sample


def test_running_statistics_equal_those_of_all_observations_whatever_the_batches():
    rng = np.random.default_rng(0)
    data = rng.normal([3.0, -200.0, 0.01], [1.0, 50.0, 0.1], size=(1000, 3))
    norm = ObservationNormalizer((3,), clip=10.0)
    start = 0
    for size in [1, 1, 7, 300, 2, 689]:  # uneven splits, single rows among them
        norm.update(data[start : start + size])
        start += size
    assert norm.count == 1000
    np.testing.assert_allclose(norm.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.var, data.var(axis=0), rtol=1e-10)
    scaled = norm(data)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-4)


def test_rescaled_observations_are_clipped_and_unseen_statistics_only_clip():
    norm = ObservationNormalizer((2,), clip=5.0)
    np.testing.assert_array_equal(norm(np.array([[0.5, -70.0]])), [[0.5, -5.0]])
    norm.update(np.array([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, std 1
    np.testing.assert_allclose(norm(np.array([[1.0, 100.0]])), [[0.0, 5.0]], atol=1e-6)


def test_statistics_of_another_shape_are_refused():
    norm = ObservationNormalizer((3,), clip=5.0)
    with pytest.raises(ValueError, match="shape"):
        norm.load_state({"mean": np.zeros(4), "var": np.ones(4), "count": np.array(1)})


SMALL = dict(
    env_id="Pendulum-v1",
    hidden_sizes=[16, 16],
    batch_size=16,
    learning_starts=50,
    eval_episodes=0,
    progress=False,
    video=False,
    obs_norm=True,
)


def test_training_counts_every_stored_observation_and_acts_on_rescaled_ones():
    agent = DDPG(config=Config(**SMALL))
    agent.learn(120)
    stored = agent.buffer.obs[:120].astype(np.float64)  # 1-step replay: one row per step, in order
    assert agent.obs_norm.count == 120
    np.testing.assert_allclose(agent.obs_norm.mean, stored.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(agent.obs_norm.var, stored.var(axis=0), rtol=1e-5)

    obs = np.array([0.3, -0.2, 6.0], dtype=np.float32)
    expected = (obs - agent.obs_norm.mean) / np.sqrt(agent.obs_norm.var + 1e-8)
    with torch.no_grad():
        mu = agent.learner.actor(torch.as_tensor(expected, dtype=torch.float32)[None])[0].numpy()
    np.testing.assert_allclose(agent.act(obs), agent.scale.to_env(mu), atol=1e-5)


def test_batches_reach_the_update_rescaled_while_the_buffer_keeps_raw_observations():
    agent = DDPG(config=Config(**SMALL))
    agent.learn(80)
    batch = sample(agent)
    assert np.abs(agent.buffer.obs[:80, 2]).max() > 1.5  # Pendulum's angular velocity, raw
    assert np.abs(batch.obs).max() <= 5.0 and np.abs(batch.next_obs).max() <= 5.0
    # The batch's rows are buffer rows, rescaled: undoing the map finds each of them in the buffer.
    raw = batch.obs * np.sqrt(agent.obs_norm.var + 1e-8) + agent.obs_norm.mean
    distances = np.abs(raw[:, None, :] - agent.buffer.obs[None, :80, :]).max(axis=2).min(axis=1)
    assert distances.max() < 1e-4


def test_observation_statistics_are_saved_with_the_weights(tmp_path):
    agent = DDPG(config=Config(**SMALL))
    agent.learn(100)
    agent.save(tmp_path / "ckpt")
    loaded = DDPG.load(tmp_path / "ckpt")
    assert loaded.obs_norm.count == 100
    np.testing.assert_array_equal(loaded.obs_norm.mean, agent.obs_norm.mean)
    np.testing.assert_array_equal(loaded.obs_norm.var, agent.obs_norm.var)
    obs = np.array([0.3, -0.2, 6.0], dtype=np.float32)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


def test_obs_norm_is_refused_for_pixels_and_for_a_clip_that_is_not_positive():
    with pytest.raises(ConfigError, match="obs_norm_clip must be > 0"):
        Config(obs_norm=True, obs_norm_clip=0.0)
    with pytest.raises(ConfigError, match="obs_norm is for state observations"):
        Config(obs_norm=True, pixels=True)
