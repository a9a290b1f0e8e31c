"""Numpy rasteriser for slot-car tracks: a full-track frame with a heads-up display, and an egocentric
top-down view used as the pixel observation. The static track is drawn once per track and copied."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ddpg.envs.slot_car.track import Track

TRACK_WIDTH_M = 0.12
CAR_LENGTH_M = 0.14
CAR_WIDTH_M = 0.06
GRASS = (34, 102, 46)
ASPHALT = (92, 92, 98)
KERB = (235, 235, 235)
SLOT = (30, 30, 30)
CAR = (220, 30, 30)
TEXT = (255, 255, 255)


def speed_colours(fraction: np.ndarray) -> np.ndarray:
    """Blue (slow) through green and yellow to red (top speed), uint8 RGB per value in [0, 1]."""
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)[..., None]
    stops = np.array([[40, 80, 255], [40, 220, 90], [250, 230, 40], [240, 40, 30]], dtype=np.float64)
    pos = f * (len(stops) - 1)
    i = np.minimum(pos.astype(np.int64), len(stops) - 2)
    frac = pos - i
    return (stops[i[..., 0]] * (1.0 - frac) + stops[i[..., 0] + 1] * frac).astype(np.uint8)


def _disc_offsets(radius: float) -> tuple[np.ndarray, np.ndarray]:
    r = max(0.5, radius)
    span = np.arange(-math.ceil(r), math.ceil(r) + 1)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    inside = dx * dx + dy * dy <= r * r
    return dy[inside], dx[inside]


def _stamp(img: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float, colour: Sequence[int]) -> None:
    """Paint discs of `radius` pixels centred on the given pixel positions (a thick polyline when the
    centres are dense)."""
    dy, dx = _disc_offsets(radius)
    r = (np.round(rows).astype(np.int64)[:, None] + dy[None, :]).ravel()
    c = (np.round(cols).astype(np.int64)[:, None] + dx[None, :]).ravel()
    ok = (r >= 0) & (r < img.shape[0]) & (c >= 0) & (c < img.shape[1])
    img[r[ok], c[ok]] = colour


def _dense_line(x: np.ndarray, y: np.ndarray, max_gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along the polyline (x, y) no more than `max_gap` apart, with the index of the segment."""
    dx, dy = np.diff(x), np.diff(y)
    counts = np.maximum(1, np.ceil(np.hypot(dx, dy) / max_gap).astype(np.int64))
    seg = np.repeat(np.arange(len(dx)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    t = (np.arange(counts.sum()) - start) / counts[seg]
    return x[seg] + t * dx[seg], y[seg] + t * dy[seg], seg


class _WorldToPixels:
    """Maps metres to (row, col) with the y axis pointing up on screen."""

    def __init__(self, x0: float, y1: float, ppm: float) -> None:
        self.x0, self.y1, self.ppm = x0, y1, ppm

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (self.y1 - np.asarray(y)) * self.ppm, (np.asarray(x) - self.x0) * self.ppm


def _draw_track(img: np.ndarray, track: Track, to_px: _WorldToPixels) -> None:
    xs, ys = np.append(track.x, track.x[0]), np.append(track.y, track.y[0])
    rows, cols = to_px(xs, ys)
    rows, cols, _ = _dense_line(rows, cols, 0.5)
    half = 0.5 * TRACK_WIDTH_M * to_px.ppm
    _stamp(img, rows, cols, half + max(1.0, 0.1 * half), KERB)
    _stamp(img, rows, cols, half, ASPHALT)
    _stamp(img, rows, cols, max(0.5, 0.08 * half), SLOT)
    x, y, heading = track.pose(0.0)
    across = np.linspace(-0.5, 0.5, 24) * TRACK_WIDTH_M
    lx, ly = x - np.sin(heading) * across, y + np.cos(heading) * across
    r, c = to_px(lx, ly)
    for k in range(2):  # chequered start/finish line
        colour = KERB if k == 0 else SLOT
        sel = slice(k, None, 2)
        _stamp(img, r[sel], c[sel], max(0.7, 0.01 * to_px.ppm), colour)


class TrackRenderer:
    """Full-track frames: background, the driven line coloured by speed, the car and a lap HUD."""

    def __init__(self, track: Track, size: tuple[int, int] = (400, 400), margin: float = 0.06) -> None:
        height, width = size
        span_x = float(track.x.max() - track.x.min()) + 2 * TRACK_WIDTH_M
        span_y = float(track.y.max() - track.y.min()) + 2 * TRACK_WIDTH_M
        hud = 34  # rows kept free at the top for the text
        ppm = min(width * (1 - 2 * margin) / span_x, (height - hud) * (1 - 2 * margin) / span_y)
        cx, cy = 0.5 * (track.x.max() + track.x.min()), 0.5 * (track.y.max() + track.y.min())
        self.to_px = _WorldToPixels(cx - width / (2 * ppm), cy + (height + hud) / (2 * ppm), ppm)
        self.size = (height, width)
        self.background = np.empty((height, width, 3), dtype=np.uint8)
        self.background[:] = GRASS
        _draw_track(self.background, track, self.to_px)
        self.background[:hud] = (self.background[:hud] * 0.4).astype(np.uint8)
        self._hud_rows = hud
        self._trail_radius = max(1.0, 0.12 * TRACK_WIDTH_M * ppm)
        self._car_shape = self._car_points(ppm)
        self._font: Any = None  # PIL's default font, loaded when text is first drawn
        self.reset()

    def reset(self) -> None:
        """Forget the driven line (a new episode)."""
        self._base = self.background.copy()
        self._last: tuple[float, float] | None = None

    def add_trail(self, xs: Sequence[float], ys: Sequence[float], speed_fraction: Sequence[float]) -> None:
        """Draw the line driven since the last call; it stays on the frame until `reset`."""
        if len(xs) == 0:
            return
        x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        f = np.asarray(speed_fraction, dtype=np.float64)
        if self._last is not None:
            x, y = np.append(self._last[0], x), np.append(self._last[1], y)
            f = np.append(f[0], f)
        self._last = (float(x[-1]), float(y[-1]))
        if len(x) < 2:
            return
        rows, cols = self.to_px(x, y)
        rows, cols, seg = _dense_line(rows, cols, 1.0)
        colours = speed_colours(f[seg + 1])
        dy, dx = _disc_offsets(self._trail_radius)
        r = (np.round(rows).astype(np.int64)[:, None] + dy[None, :]).ravel()
        c = (np.round(cols).astype(np.int64)[:, None] + dx[None, :]).ravel()
        rgb = np.repeat(colours, len(dy), axis=0)
        ok = (r >= self._hud_rows) & (r < self.size[0]) & (c >= 0) & (c < self.size[1])
        self._base[r[ok], c[ok]] = rgb[ok]

    def frame(self, x: float, y: float, heading: float, hud_lines: Sequence[str] = ()) -> np.ndarray:
        """A new uint8 (H, W, 3) frame with the car at (x, y) pointing along `heading`."""
        img = self._base.copy()
        forward, left = self._car_shape
        cos_h, sin_h = math.cos(heading), math.sin(heading)
        rows, cols = self.to_px(x + forward * cos_h - left * sin_h, y + forward * sin_h + left * cos_h)
        r, c = np.round(rows).astype(np.int64), np.round(cols).astype(np.int64)
        ok = (r >= 0) & (r < self.size[0]) & (c >= 0) & (c < self.size[1])
        img[r[ok], c[ok]] = CAR
        if hud_lines:
            self._draw_text(img, hud_lines)
        return img

    def _car_points(self, ppm: float) -> tuple[np.ndarray, np.ndarray]:
        """Sample points (metres, car frame) covering the car body, at least 12 x 6 pixels on screen."""
        length = max(CAR_LENGTH_M, 12.0 / ppm)
        width = max(CAR_WIDTH_M, 6.0 / ppm)
        step = 0.5 / ppm
        f, lat = np.meshgrid(np.arange(-length / 2, length / 2, step), np.arange(-width / 2, width / 2, step))
        return f.ravel(), lat.ravel()

    def _draw_text(self, img: np.ndarray, lines: Sequence[str]) -> None:
        from PIL import Image, ImageDraw, ImageFont

        if self._font is None:
            self._font = ImageFont.load_default()
        canvas = Image.new("L", (self.size[1], self._hud_rows))
        draw = ImageDraw.Draw(canvas)
        for k, line in enumerate(lines[:2]):
            draw.text((6, 3 + 15 * k), line, fill=255, font=self._font)
        mask = np.asarray(canvas) > 100
        img[: self._hud_rows][mask] = TEXT


class EgoView:
    """A small top-down image around the car, rotated so the car drives up the image, with the car
    fixed at three quarters of the height and a speed bar along the bottom rows (a single frame then
    holds everything the policy needs)."""

    def __init__(self, track: Track, size: tuple[int, int] = (64, 64), view_m: float = 2.0) -> None:
        height, width = size
        ppm = width / view_m
        raster_ppm = 2.0 * ppm  # oversampled so nearest-neighbour lookups do not alias the slot line
        pad = view_m
        x0, y1 = float(track.x.min()) - pad, float(track.y.max()) + pad
        cols = math.ceil((float(track.x.max()) + pad - x0) * raster_ppm)
        rows = math.ceil((y1 - float(track.y.min()) + pad) * raster_ppm)
        self._raster = np.empty((rows, cols, 3), dtype=np.uint8)
        self._raster[:] = GRASS
        self._to_px = _WorldToPixels(x0, y1, raster_ppm)
        _draw_track(self._raster, track, self._to_px)
        r, c = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
        self._forward = (0.75 * height - r) / ppm
        self._left = (0.5 * width - c) / ppm
        self.size = (height, width)
        car = (np.abs(self._forward) <= max(CAR_LENGTH_M, 3 / ppm) / 2) & (
            np.abs(self._left) <= max(CAR_WIDTH_M, 2 / ppm) / 2
        )
        self._car_mask = car

    def observe(self, x: float, y: float, heading: float, speed_fraction: float) -> np.ndarray:
        cos_h, sin_h = math.cos(heading), math.sin(heading)
        wx = x + self._forward * cos_h - self._left * sin_h
        wy = y + self._forward * sin_h + self._left * cos_h
        rows, cols = self._to_px(wx, wy)
        r = np.clip(rows.astype(np.int64), 0, self._raster.shape[0] - 1)
        c = np.clip(cols.astype(np.int64), 0, self._raster.shape[1] - 1)
        img = self._raster[r, c]
        img[self._car_mask] = CAR
        height, width = self.size
        bar = round(np.clip(speed_fraction, 0.0, 1.0) * width)
        img[height - 2 :, :] = SLOT
        img[height - 2 :, :bar] = TEXT
        return img
