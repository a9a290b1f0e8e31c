"""The `random_start` and `unsigned_curvature` constructor options of SlotCarRacing-v0."""

import numpy as np
import pytest

from ddpg.envs.slot_car import SlotCarEnv


def test_random_start_option_starts_at_rest_away_from_the_line_and_follows_the_seed():
    env = SlotCarEnv(random_start=True)
    positions = [env.reset(seed=seed)[1]["track_position"] for seed in (1, 2, 1)]
    assert positions[0] == positions[2]
    assert positions[0] != positions[1]
    assert positions[0] > 0.0
    assert env.state.speed == 0.0


def test_an_explicit_start_position_wins_over_the_random_start_option():
    env = SlotCarEnv(random_start=True)
    _, info = env.reset(seed=1, options={"start_s": 1.0})
    assert info["track_position"] == pytest.approx(1.0)


def test_unsigned_curvature_observes_the_magnitude_of_the_signed_curvature():
    signed, unsigned = SlotCarEnv(track="figure8"), SlotCarEnv(track="figure8", unsigned_curvature=True)
    for s in (0.5, 2.0, 4.6, 6.4):  # right- and left-handers of the figure eight
        a, _ = signed.reset(seed=0, options={"start_s": s})
        b, _ = unsigned.reset(seed=0, options={"start_s": s})
        np.testing.assert_allclose(b, np.abs(a))
        assert unsigned.observation_space.contains(b)
    assert np.any(signed.reset(seed=0, options={"start_s": 0.5})[0] < 0)


@pytest.mark.parametrize("name", ["random_start", "unsigned_curvature"])
def test_a_non_boolean_option_is_refused_naming_it(name):
    with pytest.raises(ValueError, match=f"^{name}: must be true or false"):
        SlotCarEnv(**{name: "yes"})
