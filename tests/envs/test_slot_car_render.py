import numpy as np
import pytest

from ddpg.envs.slot_car.env import SlotCarEnv
from ddpg.envs.slot_car.render import CAR


def car_centre(frame):
    rows, cols = np.nonzero(np.all(frame == CAR, axis=-1))
    return rows.mean(), cols.mean()


def test_rgb_array_frame_has_requested_shape_and_dtype():
    env = SlotCarEnv(render_mode="rgb_array", render_size=[200, 300])
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (200, 300, 3) and frame.dtype == np.uint8


def test_car_moves_on_rendered_frames():
    env = SlotCarEnv(render_mode="rgb_array")
    env.reset(seed=0)
    before = car_centre(env.render())
    for _ in range(30):
        env.step([0.5])
    after = car_centre(env.render())
    assert np.hypot(after[0] - before[0], after[1] - before[1]) > 5.0


def test_driven_line_is_drawn_and_cleared_on_reset():
    env = SlotCarEnv(render_mode="rgb_array")
    env.reset(seed=0)
    empty = env.render()
    for _ in range(30):
        env.step([0.5])
    driven = env.render()
    env.reset(seed=0)
    assert np.count_nonzero(np.any(driven != empty, axis=-1)) > 200
    assert np.array_equal(env.render(), empty)


def test_pixel_observation_changes_in_a_bend():
    env = SlotCarEnv(track="figure8", observation="pixels", pixel_size=[48, 40])
    first, _ = env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step([0.4])
    assert obs.shape == (48, 40, 3) and not np.array_equal(first, obs)


def test_render_without_mode_warns_and_returns_none():
    env = SlotCarEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
