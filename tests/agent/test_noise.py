import numpy as np
import pytest

from ddpg.agent.noise import ActionNoise, ou_step, schedule_factor
from ddpg.config import NoiseConfig, Schedule


def test_ou_reverts_to_its_mean():
    rng = np.random.default_rng(0)
    x = np.full(1000, 5.0)
    for _ in range(100):
        x = ou_step(x, theta=0.15, mu=1.0, sigma=0.0, dt=1.0, rng=rng)
    np.testing.assert_allclose(x, 1.0 + 4.0 * 0.85**100)


def test_ou_stationary_variance_is_sigma_squared_over_two_theta():
    theta, sigma, dt = 0.15, 0.3, 0.01
    rng = np.random.default_rng(0)
    x = np.zeros(4000)
    for _ in range(int(10 / (theta * dt))):  # ten relaxation times: stationary
        x = ou_step(x, theta, 0.0, sigma, dt, rng)
    assert x.var() == pytest.approx(sigma**2 / (2 * theta), rel=0.06)
    assert abs(x.mean()) < 0.05


def test_ou_noise_resets_to_mu_at_episode_start():
    noise = ActionNoise(NoiseConfig(kind="ou", sigma=1.0, mu=0.5), 2, np.random.default_rng(0))
    noise.sample(0, 0)
    assert not np.allclose(noise.state, 0.5)
    noise.reset()
    np.testing.assert_array_equal(noise.state, [[0.5, 0.5]])


def test_each_env_has_its_own_ou_process_and_reset():
    noise = ActionNoise(NoiseConfig(kind="ou", sigma=1.0), 2, np.random.default_rng(0), n_envs=3)
    sample = noise.sample(0, 0)
    assert sample.shape == (3, 2) and len(np.unique(sample)) == 6  # independent draws per env
    noise.reset(1)
    assert not noise.state[1].any() and noise.state[[0, 2]].all()


def test_ou_noise_is_temporally_correlated_and_gaussian_is_not():
    def lag1(kind):
        noise = ActionNoise(NoiseConfig(kind=kind, sigma=0.2), 1, np.random.default_rng(0))
        xs = np.array([noise.sample(t, 0)[0, 0] for t in range(20000)])
        return np.corrcoef(xs[:-1], xs[1:])[0, 1]

    assert lag1("ou") == pytest.approx(0.85, abs=0.03)
    assert abs(lag1("gaussian")) < 0.03


def test_gaussian_noise_has_sigma_in_normalised_units():
    noise = ActionNoise(NoiseConfig(kind="gaussian", sigma=0.3), 3, np.random.default_rng(0))
    xs = np.stack([noise.sample(t, 0) for t in range(20000)])
    assert xs.std() == pytest.approx(0.3, rel=0.03)


def test_no_noise_is_zero():
    noise = ActionNoise(NoiseConfig(kind="none"), 2, np.random.default_rng(0))
    assert not noise.sample(0, 0).any()


@pytest.mark.parametrize(
    ("schedule", "t", "expected"),
    [
        (Schedule(), 10**6, 1.0),
        (Schedule(kind="linear", final=0.1, duration=100), 0, 1.0),
        (Schedule(kind="linear", final=0.1, duration=100), 50, 0.55),
        (Schedule(kind="linear", final=0.1, duration=100), 500, 0.1),
        (Schedule(kind="exponential", rate=0.99), 10, 0.99**10),
        (Schedule(kind="exponential", rate=0.5, final=0.2), 10, 0.2),
    ],
)
def test_schedule_factors(schedule, t, expected):
    assert schedule_factor(schedule, t) == pytest.approx(expected)


def test_noise_scale_follows_the_episode_schedule():
    config = NoiseConfig(
        kind="gaussian", sigma=1.0, schedule=Schedule(kind="exponential", unit="episode", rate=0.5)
    )
    noise = ActionNoise(config, 1, np.random.default_rng(0))
    assert noise.scale(step=1000, episode=0) == 1.0
    assert noise.scale(step=0, episode=3) == 0.125
