"""The numpy camera draws the road where the robot's pose says it is."""

from __future__ import annotations

import numpy as np
import pytest

from ddpg.envs.lane_following import LaneFollowingEnv
from ddpg.envs.lane_following.camera import Palette

# A long straight along the south of the map: road centre line at y = 0.3 for 0.6 < x < 3.0; driving
# east, the right lane's centre is at y = 0.18 and the yellow centre line is on the robot's left.
LONG_LOOP = "SE EW EW EW EW SW\nNE EW EW EW EW NW\n"
LANE_CENTRE_Y = 0.18


@pytest.fixture
def env(tmp_path) -> LaneFollowingEnv:
    path = tmp_path / "long.txt"
    path.write_text(LONG_LOOP)
    return LaneFollowingEnv(map_name=str(path))


def _view(env: LaneFollowingEnv, y: float) -> np.ndarray:
    observation, _ = env.reset(options={"pose": (0.7, y, 0.0)})
    return observation


def _mask(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(image == np.array(colour, dtype=np.uint8), axis=-1)


def test_on_the_lane_centre_the_yellow_line_is_left_and_the_edge_line_right(env) -> None:
    image = _view(env, LANE_CENTRE_Y)
    yellow, white = _mask(image, Palette().yellow), _mask(image, Palette().white)
    half = image.shape[1] // 2
    assert yellow[:, :half].sum() > 10
    assert yellow[:, half:].sum() == 0
    assert white[:, half:].sum() > 100


def test_moving_the_robot_left_moves_the_centre_line_right_in_the_image(env) -> None:
    centred = _mask(_view(env, LANE_CENTRE_Y), Palette().yellow)
    shifted = _mask(_view(env, LANE_CENTRE_Y + 0.05), Palette().yellow)
    # Compare row by row: each image row looks at one distance ahead, where the same dashes lie.
    rows = np.flatnonzero(centred.any(axis=1) & shifted.any(axis=1))
    columns = np.arange(centred.shape[1])
    moved = [columns[shifted[row]].mean() - columns[centred[row]].mean() for row in rows]
    assert len(rows) >= 3
    assert min(moved) > 0


def test_rows_above_the_horizon_show_the_sky(env) -> None:
    image = _view(env, LANE_CENTRE_Y)
    assert _mask(image[:10], Palette().sky).all()


def test_observation_has_the_configured_camera_size_and_dtype() -> None:
    observation, _ = LaneFollowingEnv(camera_width=48, camera_height=32).reset(seed=0)
    assert (observation.shape, observation.dtype) == ((32, 48, 3), np.uint8)


def test_domain_randomisation_changes_colours_per_seed() -> None:
    randomised = LaneFollowingEnv(map_name="loop", domain_randomization=True)
    first, _ = randomised.reset(seed=1, options={"pose": (0.9, 1.38, 0.0)})
    second, _ = randomised.reset(seed=2, options={"pose": (0.9, 1.38, 0.0)})
    assert not np.array_equal(first, second)


def test_rgb_array_render_is_a_top_down_view_256_pixels_on_the_long_side() -> None:
    env = LaneFollowingEnv(map_name="zigzag", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert (frame.shape, frame.dtype) == ((256, 256, 3), np.uint8)
    assert _mask(frame, (220, 30, 30)).any()
