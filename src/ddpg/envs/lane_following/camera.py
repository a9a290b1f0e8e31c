"""Numpy renderer: a top-down texture of the map and a pinhole camera looking at it.

The camera is pitched down towards a flat ground, so every pixel below the horizon sees one fixed
point of the ground in the robot's frame (inverse perspective mapping). Those points are computed
once per camera; a frame is then a rotation and translation of them and a lookup into the texture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ddpg.envs.lane_following.maps import (
    ROAD_HALF_WIDTH,
    TILE_SIZE,
    WHITE_LINE,
    YELLOW_HALF_WIDTH,
    RoadMap,
)
from ddpg.envs.lane_following.robot import RobotPose

GRASS, ROAD, WHITE, YELLOW = 0, 1, 2, 3
DASH_PERIOD = 0.2  # metres of one yellow dash and the gap after it
MIN_IMAGE_SIZE = 16


@dataclass(frozen=True)
class CameraParams:
    height: float = 0.1  # metres above the ground
    pitch_deg: float = 20.0  # downwards
    hfov_deg: float = 100.0  # horizontal field of view; pixels are square
    forward_offset: float = 0.05  # metres ahead of the wheel axle


@dataclass(frozen=True)
class Palette:
    grass: tuple[int, int, int] = (70, 130, 60)
    road: tuple[int, int, int] = (50, 50, 55)
    white: tuple[int, int, int] = (235, 235, 235)
    yellow: tuple[int, int, int] = (240, 200, 20)
    sky: tuple[int, int, int] = (160, 190, 225)

    def ground_colours(self) -> np.ndarray:
        """Colours indexed by the texture classes GRASS, ROAD, WHITE, YELLOW."""
        return np.array([self.grass, self.road, self.white, self.yellow], dtype=np.uint8)

    def jittered(self, rng: np.random.Generator, amount: int = 25) -> Palette:
        """The same palette with every colour moved by up to ``amount`` per channel (domain randomisation)."""

        def jitter(colour: tuple[int, int, int]) -> tuple[int, int, int]:
            shifted = np.clip(np.array(colour) + rng.integers(-amount, amount + 1, size=3), 0, 255)
            r, g, b = (int(c) for c in shifted)
            return r, g, b

        return Palette(*(jitter(c) for c in (self.grass, self.road, self.white, self.yellow, self.sky)))


@dataclass(frozen=True)
class GroundTexture:
    """Texture classes of the map, north row first, with a one-texel border of grass all round."""

    classes: np.ndarray
    texel: float  # metres per texel
    world_height: float  # metres; texel rows count down from here


def _classify(segment_projection: tuple, length: float) -> np.ndarray:
    s, lateral = segment_projection[0], np.abs(segment_projection[1])
    dashes = max(1, round(length / DASH_PERIOD))
    on_dash = np.mod(s * dashes / length, 1.0) < 0.5
    classes = np.where(lateral <= ROAD_HALF_WIDTH, ROAD, GRASS)
    classes = np.where((lateral >= WHITE_LINE[0]) & (lateral <= WHITE_LINE[1]), WHITE, classes)
    return np.where((lateral <= YELLOW_HALF_WIDTH) & on_dash, YELLOW, classes).astype(np.uint8)


def rasterise(road_map: RoadMap, texels_per_tile: int = 60) -> GroundTexture:
    """Classes of the ground at every texel centre (60 texels per 0.6 m tile: 1 cm)."""
    texel = TILE_SIZE / texels_per_tile
    classes = np.full(
        (road_map.rows * texels_per_tile + 2, road_map.cols * texels_per_tile + 2), GRASS, np.uint8
    )
    centres = (np.arange(texels_per_tile) + 0.5) * texel
    for segment in road_map.segments:
        row, col = segment.tile
        x0, y0 = road_map.tile_bounds(row, col)
        xs, ys = np.meshgrid(x0 + centres, y0 + TILE_SIZE - centres)
        top, left = 1 + row * texels_per_tile, 1 + col * texels_per_tile
        tile_view = classes[top : top + texels_per_tile, left : left + texels_per_tile]
        tile_view[:] = _classify(segment.project(xs, ys), segment.length)
    return GroundTexture(classes, texel, road_map.height)


def ground_offsets(
    width: int, height: int, params: CameraParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: ground point ahead of and left of the robot (metres), and whether it sees the ground."""
    focal = (width / 2) / math.tan(math.radians(params.hfov_deg) / 2)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    right, down = (cols + 0.5 - width / 2) / focal, (rows + 0.5 - height / 2) / focal
    pitch = math.radians(params.pitch_deg)
    ray_forward = math.cos(pitch) - down * math.sin(pitch)
    ray_up = -math.sin(pitch) - down * math.cos(pitch)
    sees_ground = ray_up < 0
    reach = np.where(sees_ground, params.height / np.where(sees_ground, -ray_up, 1.0), 0.0)
    return params.forward_offset + reach * ray_forward, reach * -right, sees_ground


class GroundCamera:
    """A forward camera on the robot; ``render`` costs one gather per frame."""

    def __init__(self, width: int, height: int, params: CameraParams) -> None:
        forward, left, sees_ground = ground_offsets(width, height, params)
        self.shape = (height, width, 3)
        self._ground_pixels = np.flatnonzero(sees_ground)
        self._forward = forward.ravel()[self._ground_pixels]
        self._left = left.ravel()[self._ground_pixels]

    def render(
        self, texture: GroundTexture, colours: np.ndarray, sky: np.ndarray, pose: RobotPose
    ) -> np.ndarray:
        """The camera image; ``colours`` is the texture's RGB (rows, cols, 3) in the texture's layout."""
        cos, sin = math.cos(pose.heading), math.sin(pose.heading)
        x = pose.x + cos * self._forward - sin * self._left
        y = pose.y + sin * self._forward + cos * self._left
        rows, cols = texture.classes.shape
        # Points off the map clip onto the grass border.
        row = np.clip(np.floor((texture.world_height - y) / texture.texel).astype(np.int64) + 1, 0, rows - 1)
        col = np.clip(np.floor(x / texture.texel).astype(np.int64) + 1, 0, cols - 1)
        image = np.empty(self.shape, dtype=np.uint8)
        flat = image.reshape(-1, 3)
        flat[:] = sky
        flat[self._ground_pixels] = colours.reshape(-1, 3)[row * cols + col]
        return image


def top_down(texture: GroundTexture, colours: np.ndarray, pose: RobotPose, size: int = 256) -> np.ndarray:
    """The whole map seen from above, ``size`` pixels on its longer side, the robot drawn in red."""
    rows, cols = texture.classes.shape
    scale = size / max(rows, cols)
    out_rows, out_cols = max(1, round(rows * scale)), max(1, round(cols * scale))
    pick_rows = np.minimum((np.arange(out_rows) / scale).astype(np.int64), rows - 1)
    pick_cols = np.minimum((np.arange(out_cols) / scale).astype(np.int64), cols - 1)
    image = colours[pick_rows[:, None], pick_cols[None, :]].copy()
    y = texture.world_height - (pick_rows - 1 + 0.5) * texture.texel
    x = (pick_cols - 1 + 0.5) * texture.texel
    dx, dy = x[None, :] - pose.x, y[:, None] - pose.y
    image[np.hypot(dx, dy) < 0.05] = (220, 30, 30)
    nose_x, nose_y = pose.x + 0.06 * math.cos(pose.heading), pose.y + 0.06 * math.sin(pose.heading)
    image[np.hypot(x[None, :] - nose_x, y[:, None] - nose_y) < 0.02] = (255, 255, 255)
    return image
