"""Closed slot-car tracks: a periodic cubic spline through control points, resampled by arc length.

Lengths are in metres (1:32 scale: a lane is about 0.1 m wide, a home layout a few metres across).
Curvature is signed: positive when the track turns left (counter-clockwise) in the direction of travel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN_TRACKS: tuple[str, ...] = ("oval", "figure8", "grand_prix")
TRACK_FILE_KEYS: tuple[str, ...] = ("points", "name", "closed", "crossings_allowed")
DEFAULT_SPACING_M = 0.01
# Two points closer than this are the same point (a repeated first point closes the loop explicitly).
_SAME_POINT_M = 1e-6


@dataclass(frozen=True, eq=False)
class Track:
    """A closed track sampled every `spacing` metres of arc length, starting at the start/finish line.

    Arrays have one entry per sample; sample i sits at arc length ``s[i] = i * spacing`` and the
    sample after the last one is sample 0 again.
    """

    name: str
    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    kappa: np.ndarray
    length: float
    crossings_allowed: bool = False

    @property
    def spacing(self) -> float:
        return self.length / len(self.s)

    def curvature(self, s: np.ndarray | float) -> np.ndarray:
        """Signed curvature (1/m) at arc lengths `s` (any real value; the track is periodic)."""
        return self._interp(self.kappa, s)

    def curvature_at(self, s: float) -> float:
        """Scalar `curvature` without numpy overhead: the physics calls it every substep."""
        pos = (s % self.length) / self.spacing
        i = int(pos)
        frac = pos - i
        n = len(self.kappa)
        k0 = float(self.kappa[i % n])
        return k0 + frac * (float(self.kappa[(i + 1) % n]) - k0)

    def pose(self, s: float) -> tuple[float, float, float]:
        """Position (x, y) in metres and heading (rad) at arc length `s`."""
        x = float(self._interp(self.x, s))
        y = float(self._interp(self.y, s))
        i = round((s % self.length) / self.spacing) % len(self.s)
        return x, y, float(self.heading[i])

    def _interp(self, values: np.ndarray, s: np.ndarray | float) -> np.ndarray:
        pos = np.mod(np.asarray(s, dtype=np.float64), self.length) / self.spacing
        i = np.floor(pos).astype(np.int64)
        frac = pos - i
        n = len(values)
        return values[i % n] * (1.0 - frac) + values[(i + 1) % n] * frac


def make_track(spec: Any, spacing: float = DEFAULT_SPACING_M) -> Track:
    """Build a track from what a user (or a YAML config) can give.

    `spec` is one of: a `Track`; a built-in name (``oval``, ``figure8``, ``grand_prix``); a path to a
    ``.yaml``/``.yml``/``.json`` file; a mapping with the file's keys; a list of ``[x, y]`` points.
    A track file holds ``points: [[x, y], ...]`` and optionally ``name``, ``closed`` and
    ``crossings_allowed``. Semantics of ``closed``:

    * ``closed: true`` (the default): the points are a loop; the last point joins the first one.
      Repeating the first point at the end is allowed and the repeat is dropped.
    * ``closed: false``: the points are a polyline that must close itself, i.e. its last point must
      coincide with its first one; otherwise it is not a circuit and a ``ValueError`` is raised.

    Self-intersecting loops are rejected unless ``crossings_allowed`` is true (a slot-car crossing
    or bridge, as in the built-in ``figure8``).
    """
    if isinstance(spec, Track):
        return spec
    if isinstance(spec, str | Path):
        return _track_from_name_or_path(str(spec), spacing)
    if isinstance(spec, Mapping):
        return _track_from_mapping(spec, default_name="custom", spacing=spacing)
    if isinstance(spec, Sequence | np.ndarray):
        return track_from_points(spec, spacing=spacing)
    raise ValueError(f"track: expected a name, a file path, a mapping or a list of points, got {spec!r}")


def track_from_points(
    points: Any,
    name: str = "custom",
    closed: bool = True,
    crossings_allowed: bool = False,
    spacing: float = DEFAULT_SPACING_M,
) -> Track:
    """A track through `points` ([[x, y], ...] in metres); see `make_track` for `closed`."""
    pts = _as_points(points)
    if len(pts) >= 2 and np.linalg.norm(pts[0] - pts[-1]) < _SAME_POINT_M:
        pts = pts[:-1]
    elif not closed:
        raise ValueError(
            "track: points marked closed: false must end where they start "
            f"(first {pts[0].tolist()}, last {pts[-1].tolist()}); an open polyline is not a circuit"
        )
    if len(pts) < 4:
        raise ValueError(f"track: needs at least 4 distinct points, got {len(pts)}")
    gaps = np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)
    if np.any(gaps < _SAME_POINT_M):
        raise ValueError(f"track: consecutive points coincide at index {int(np.argmin(gaps))}")
    if not spacing > 0:
        raise ValueError(f"spacing: must be positive, got {spacing}")
    track = _spline_track(pts, name, spacing, bool(crossings_allowed))
    if not crossings_allowed:
        hit = _self_intersection(track)
        if hit is not None:
            raise ValueError(
                f"track: the closed curve through the points crosses itself near "
                f"({hit[0]:.3f}, {hit[1]:.3f}); "
                "set crossings_allowed: true if that is a deliberate crossing"
            )
    return track


def builtin_track(name: str, spacing: float = DEFAULT_SPACING_M) -> Track:
    """One of `BUILTIN_TRACKS`."""
    if name == "oval":
        return track_from_points(_oval_points(), name="oval", spacing=spacing)
    if name == "figure8":
        return track_from_points(_figure8_points(), name="figure8", crossings_allowed=True, spacing=spacing)
    if name == "grand_prix":
        return track_from_points(_grand_prix_points(), name="grand_prix", spacing=spacing)
    raise ValueError(f"track: unknown track {name!r}; built-in tracks are {', '.join(BUILTIN_TRACKS)}")


def load_track_file(path: str | Path, spacing: float = DEFAULT_SPACING_M) -> Track:
    """A track from a YAML or JSON file (see `make_track` for the format)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"track: no such track file {str(path)!r}")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"track: file {path.name!r} must hold a mapping with a 'points' key")
    return _track_from_mapping(data, default_name=path.stem, spacing=spacing)


def _track_from_name_or_path(spec: str, spacing: float) -> Track:
    if spec in BUILTIN_TRACKS:
        return builtin_track(spec, spacing)
    if spec.lower().endswith((".yaml", ".yml", ".json")) or Path(spec).is_file():
        return load_track_file(spec, spacing)
    raise ValueError(
        f"track: unknown track {spec!r}; built-in tracks are {', '.join(BUILTIN_TRACKS)} "
        "(or give a .yaml/.json file or a list of [x, y] points)"
    )


def _track_from_mapping(data: Mapping, default_name: str, spacing: float) -> Track:
    unknown = sorted(set(data) - set(TRACK_FILE_KEYS))
    if unknown:
        raise ValueError(f"track: unknown keys {unknown}; allowed keys are {list(TRACK_FILE_KEYS)}")
    if "points" not in data:
        raise ValueError("track: a track mapping needs a 'points' key holding [[x, y], ...]")
    return track_from_points(
        data["points"],
        name=str(data.get("name", default_name)),
        closed=_as_bool(data.get("closed", True), "track.closed"),
        crossings_allowed=_as_bool(data.get("crossings_allowed", False), "track.crossings_allowed"),
        spacing=spacing,
    )


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ValueError(f"{what}: expected true or false, got {value!r}")


def _as_points(points: Any) -> np.ndarray:
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"track: points must be a list of [x, y] numbers ({err})") from None
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"track: points must be a list of [x, y] pairs, got an array of shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("track: points must be finite numbers")
    return pts


def _periodic_second_derivatives(h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Second derivatives at the knots of the periodic cubic spline (C2 everywhere, so curvature is
    continuous, which the grip limit v = sqrt(a/|kappa|) needs)."""
    n = len(h)
    h_prev = np.roll(h, 1)
    a = np.zeros((n, n))
    idx = np.arange(n)
    a[idx, (idx - 1) % n] += h_prev
    a[idx, idx] += 2.0 * (h_prev + h)
    a[idx, (idx + 1) % n] += h
    slope = (np.roll(values, -1, axis=0) - values) / h[:, None]
    rhs = 6.0 * (slope - np.roll(slope, 1, axis=0))
    return np.linalg.solve(a, rhs)


def _spline_eval(
    knots: np.ndarray, h: np.ndarray, values: np.ndarray, m: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, first and second derivative of the periodic spline at parameters `t` in [0, period)."""
    i = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(h) - 1)
    j = (i + 1) % len(h)
    hi = h[i][:, None]
    a = (knots[i + 1] - t)[:, None]
    b = (t - knots[i])[:, None]
    ci = values[i] / hi - m[i] * hi / 6.0
    cj = values[j] / hi - m[j] * hi / 6.0
    value = (m[i] * a**3 + m[j] * b**3) / (6.0 * hi) + ci * a + cj * b
    first = (-m[i] * a**2 + m[j] * b**2) / (2.0 * hi) - ci + cj
    second = (m[i] * a + m[j] * b) / hi
    return value, first, second


def _spline_track(pts: np.ndarray, name: str, spacing: float, crossings_allowed: bool) -> Track:
    # Chord-length parametrisation keeps the spline from overshooting where points are unevenly spaced.
    h = np.linalg.norm(np.roll(pts, -1, axis=0) - pts, axis=1)
    knots = np.concatenate([[0.0], np.cumsum(h)])
    m = _periodic_second_derivatives(h, pts)
    fine_t = np.linspace(0.0, knots[-1], max(20_000, 200 * len(pts)), endpoint=False)
    _, d1, _ = _spline_eval(knots, h, pts, m, fine_t)
    speed = np.linalg.norm(d1, axis=1)
    speed_closed = np.append(speed, speed[0])
    steps = np.diff(np.append(fine_t, knots[-1])) * 0.5 * (speed_closed[:-1] + speed_closed[1:])
    fine_s = np.concatenate([[0.0], np.cumsum(steps)])
    length = float(fine_s[-1])
    n = max(64, math.ceil(length / spacing))
    s = np.arange(n) * (length / n)
    t = np.interp(s, fine_s, np.append(fine_t, knots[-1]))
    pos, d1, d2 = _spline_eval(knots, h, pts, m, t)
    norm = np.linalg.norm(d1, axis=1)
    kappa = (d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / norm**3
    arrays = {
        "s": s,
        "x": pos[:, 0].copy(),
        "y": pos[:, 1].copy(),
        "heading": np.arctan2(d1[:, 1], d1[:, 0]),
        "kappa": kappa,
    }
    for array in arrays.values():
        array.flags.writeable = False  # a track is shared by envs and references; keep it frozen
    return Track(name=name, length=length, crossings_allowed=crossings_allowed, **arrays)


def _self_intersection(track: Track, max_segments: int = 800) -> tuple[float, float] | None:
    """A point where the closed curve crosses itself, or None."""
    step = max(1, len(track.s) // max_segments)
    p = np.stack([track.x[::step], track.y[::step]], axis=1)
    q = np.roll(p, -1, axis=0)
    n = len(p)
    i, j = np.triu_indices(n, k=2)
    keep = (j - i) % n != n - 1  # the last segment touches the first one
    i, j = i[keep], j[keep]

    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.sign((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    d1 = orient(p[i], q[i], p[j])
    d2 = orient(p[i], q[i], q[j])
    d3 = orient(p[j], q[j], p[i])
    d4 = orient(p[j], q[j], q[i])
    crossing = (d1 * d2 < 0) & (d3 * d4 < 0)
    if not np.any(crossing):
        return None
    k = int(np.argmax(crossing))
    return float(p[i[k], 0]), float(p[i[k], 1])


def _oval_points() -> np.ndarray:
    """A stadium, 2.4 m straights and 0.6 m radius bends; the start line is mid bottom straight."""
    return _curvature_program([("S", 1.2, 0), ("L", 0.6, 180), ("S", 2.4, 0), ("L", 0.6, 180), ("S", 1.2, 0)])


def _figure8_points(width: float = 1.4, height: float = 0.7, n: int = 32) -> np.ndarray:
    """A lemniscate of Gerono; it crosses itself at the origin (the slot-car crossing)."""
    theta = 2.0 * math.pi * (np.arange(n) + 2) / n
    return np.stack([width * np.sin(theta), height * np.sin(2.0 * theta)], axis=1)


def _grand_prix_points() -> np.ndarray:
    """A longer circuit: a long main straight, two hairpins, a chicane and sweeping bends."""
    return _curvature_program(
        [
            ("S", 3.0, 0),
            ("L", 0.5, 90),
            ("S", 0.3, 0),
            ("R", 0.3, 45),  # chicane
            ("L", 0.3, 90),
            ("R", 0.3, 45),
            ("S", 0.2, 0),
            ("L", 0.25, 180),  # first hairpin
            ("S", 0.3, 0),
            ("R", 0.3, 90),
            ("S", 0.4, 0),
            ("R", 0.35, 90),
            ("S", 0.5, 0),
            ("L", 0.3, 90),
            ("S", 0.7, 0),
            ("L", 0.4, 90),
            ("S", 0.2, 0),
            ("R", 0.4, 90),
            ("L", 0.7, 180),  # second hairpin, onto the main straight
            ("S", 0.2, 0),
        ]
    )


def _curvature_program(
    moves: Sequence[tuple[str, float, float]], step: float = 0.1, blend: float = 0.2
) -> np.ndarray:
    """Control points for a lap of straights ("S", length, 0) and arcs ("L"/"R", radius, degrees).

    The curvature steps between pieces are blended over `blend` metres (like the easement curves of
    real track) because a spline through a curvature jump rings, and the grip limit sees every ripple.
    Any closing gap is spread along the lap so the loop closes without a kink.
    """
    fine = 0.002
    kappa: list[np.ndarray] = []
    for kind, size, angle in moves:
        if kind == "S":
            kappa.append(np.zeros(round(size / fine)))
        else:
            sign = 1.0 if kind == "L" else -1.0
            kappa.append(np.full(round(size * math.radians(angle) / fine), sign / size))
    k = np.concatenate(kappa)
    window = round(blend / fine)
    # A periodic moving average keeps the total turning (exactly 360 degrees) unchanged.
    padded = np.concatenate([k[-window:], k, k[:window]])
    k = np.convolve(padded, np.ones(window) / window, mode="same")[window:-window]
    heading = np.concatenate([[0.0], np.cumsum(k)[:-1]]) * fine
    pts = np.stack([np.cumsum(np.cos(heading)), np.cumsum(np.sin(heading))], axis=1) * fine
    pts = np.concatenate([[[0.0, 0.0]], pts])
    gap = pts[-1] - pts[0]
    pts = pts - np.outer(np.linspace(0.0, 1.0, len(pts)), gap)
    every = round(step / fine)
    return pts[:-1:every]
