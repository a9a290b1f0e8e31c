"""Road maps for LaneFollowing: a grid of square tiles read from a compact text format.

Map format (one line per row of tiles, the first line is the northern edge of the map):

    # a comment
    SE EW SW
    NS .  NS
    NE EW NW

Tokens are separated by whitespace. ``.`` or ``grass`` is a tile without road. A road tile is
named by the two sides its road leaves through, letters from ``N E S W`` in any order:
``NS`` and ``EW`` are straight tiles, ``NE``, ``NW``, ``SE`` and ``SW`` are quarter-circle curves
around the corner where those two sides meet. Every road side must meet a road side of the
neighbouring tile, so the roads of a map form closed loops; intersections are not supported.

World frame: x points east, y north, origin at the south-west corner of the map, metres. Each
road carries two lanes (right-hand traffic) separated by a dashed yellow centre line, with white
lines at its outer edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE_SIZE = 0.6
ROAD_HALF_WIDTH = TILE_SIZE / 2
LANE_OFFSET = 0.12  # right-lane centre, to the right of the road centre line
WHITE_LINE = (0.235, 0.285)  # inner and outer lateral offset of the white edge lines
YELLOW_HALF_WIDTH = 0.0125
CURVE_RADIUS = TILE_SIZE / 2

_OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
_GRID_STEP = {"N": (-1, 0), "S": (1, 0), "E": (0, 1), "W": (0, -1)}  # (row, column) change
_EMPTY = {".", "grass"}

BUILTIN_MAPS: dict[str, str] = {
    "loop": """
        SE EW SW
        NS .  NS
        NE EW NW
    """,
    "zigzag": """
        SE EW SW .  .
        NS .  NE SW .
        NS .  .  NE SW
        NS .  .  .  NS
        NE EW EW EW NW
    """,
    "udem": """
        SE EW EW SW .  .
        NS .  .  NE EW SW
        NS .  .  .  .  NS
        NE SW .  SE EW NW
        .  NS .  NS .  .
        .  NE EW NW .  .
    """,
}


@dataclass(frozen=True)
class Segment:
    """The road centre line through one tile, oriented along its loop's canonical direction."""

    tile: tuple[int, int]
    loop: int
    # Right-lane arc length of the loop's tiles before this one (in loop order), for directions +1 and -1.
    lane_starts: tuple[float, float]
    length: float
    entry: tuple[float, float]  # entry point on the tile edge
    exit: tuple[float, float]
    corner: tuple[float, float] | None  # centre of the arc for curves
    turn: int  # +1 turns left (counter-clockwise), -1 right, 0 straight

    def lane_factor(self, direction: int) -> float:
        """Right-lane arc length per metre of centre line, when driving in ``direction`` (+1 or -1)."""
        return 1.0 + direction * self.turn * LANE_OFFSET / CURVE_RADIUS

    def project(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple:
        """Arc length from the entry, lateral offset (left positive), unit tangent and curvature."""
        if self.corner is None:
            tx = (self.exit[0] - self.entry[0]) / self.length
            ty = (self.exit[1] - self.entry[1]) / self.length
            dx, dy = x - self.entry[0], y - self.entry[1]
            return dx * tx + dy * ty, dx * -ty + dy * tx, tx, ty, 0.0
        cx, cy = self.corner
        vx, vy = x - cx, y - cy
        r = np.maximum(np.hypot(vx, vy), 1e-9)
        ux0, uy0 = (self.entry[0] - cx) / CURVE_RADIUS, (self.entry[1] - cy) / CURVE_RADIUS
        swept = np.arctan2(ux0 * vy - uy0 * vx, ux0 * vx + uy0 * vy)
        ux, uy = vx / r, vy / r
        return (
            self.turn * swept * CURVE_RADIUS,
            self.turn * (CURVE_RADIUS - r),
            -self.turn * uy,
            self.turn * ux,
            self.turn / CURVE_RADIUS,
        )


@dataclass(frozen=True)
class RoadMap:
    name: str
    rows: int
    cols: int
    segments: tuple[Segment, ...]
    lane_lengths: tuple[tuple[float, float], ...]  # per loop, the right lane's length in each direction

    @property
    def width(self) -> float:
        return self.cols * TILE_SIZE

    @property
    def height(self) -> float:
        return self.rows * TILE_SIZE

    def tile_bounds(self, row: int, col: int) -> tuple[float, float]:
        """South-west corner of a tile in world coordinates."""
        return col * TILE_SIZE, (self.rows - 1 - row) * TILE_SIZE

    def segment_at(self, x: float, y: float) -> Segment | None:
        col, row = math.floor(x / TILE_SIZE), self.rows - 1 - math.floor(y / TILE_SIZE)
        for segment in self.segments:
            if segment.tile == (row, col):
                return segment
        return None

    def straight_segments(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.corner is None)


def _side_point(rows: int, tile: tuple[int, int], side: str) -> tuple[float, float]:
    """Midpoint of one side of a tile, where roads cross from tile to tile."""
    x0, y0 = tile[1] * TILE_SIZE, (rows - 1 - tile[0]) * TILE_SIZE
    half = TILE_SIZE / 2
    offsets = {"N": (half, TILE_SIZE), "S": (half, 0.0), "E": (TILE_SIZE, half), "W": (0.0, half)}
    return x0 + offsets[side][0], y0 + offsets[side][1]


def _make_segment(
    rows: int, tile: tuple[int, int], entry: str, exit: str, loop: int, lane_starts: tuple[float, float]
) -> Segment:
    a, b = _side_point(rows, tile, entry), _side_point(rows, tile, exit)
    if _OPPOSITE[entry] == exit:
        return Segment(tile, loop, lane_starts, TILE_SIZE, a, b, None, 0)
    # The arc's centre is the tile corner shared by both sides: x from the E/W side, y from N/S.
    corner = (b[0], a[1]) if entry in "NS" else (a[0], b[1])
    cross = (a[0] - corner[0]) * (b[1] - corner[1]) - (a[1] - corner[1]) * (b[0] - corner[0])
    return Segment(tile, loop, lane_starts, math.pi * CURVE_RADIUS / 2, a, b, corner, 1 if cross > 0 else -1)


def _parse_grid(text: str, source: str) -> tuple[int, int, dict[tuple[int, int], str]]:
    """Rows, columns and the road tiles' sides."""
    lines = [line.split("#", 1)[0].split() for line in text.splitlines()]
    lines = [tokens for tokens in lines if tokens]
    if not lines:
        raise ValueError(f"map_name: {source}: the map has no rows")
    if len({len(tokens) for tokens in lines}) != 1:
        raise ValueError(f"map_name: {source}: rows have different numbers of tiles")
    roads = {}
    for row, tokens in enumerate(lines):
        for col, token in enumerate(tokens):
            if token in _EMPTY:
                continue
            sides = token.upper()
            if len(sides) != 2 or set(sides) - set("NESW") or sides[0] == sides[1]:
                raise ValueError(
                    f"map_name: {source}: tile {token!r} at row {row}, column {col} is not '.', 'grass' "
                    "or two distinct sides from N, E, S, W (intersections are not supported)"
                )
            roads[(row, col)] = sides
    return len(lines), len(lines[0]), roads


def _check_neighbours(roads: dict[tuple[int, int], str], source: str) -> None:
    for (row, col), sides in roads.items():
        for side in sides:
            d_row, d_col = _GRID_STEP[side]
            neighbour = roads.get((row + d_row, col + d_col), "")
            if _OPPOSITE[side] not in neighbour:
                raise ValueError(
                    f"map_name: {source}: the road leaving row {row}, column {col} through side {side} "
                    "does not continue into the neighbouring tile"
                )


def parse_map(text: str, source: str = "<map>") -> RoadMap:
    """Parse the text format described in this module; errors name ``map_name`` and the source."""
    rows, cols, roads = _parse_grid(text, source)
    if not roads:
        raise ValueError(f"map_name: {source}: the map has no road tiles")
    _check_neighbours(roads, source)
    segments: list[Segment] = []
    lengths: list[tuple[float, float]] = []
    visited: set[tuple[int, int]] = set()
    for start in sorted(roads):
        if start in visited:
            continue
        loop, forward, reverse, tile, entry = len(lengths), 0.0, 0.0, start, roads[start][0]
        while tile not in visited:
            visited.add(tile)
            exit = roads[tile].replace(entry, "")
            segment = _make_segment(rows, tile, entry, exit, loop, (forward, reverse))
            segments.append(segment)
            forward += segment.length * segment.lane_factor(1)
            reverse += segment.length * segment.lane_factor(-1)
            d_row, d_col = _GRID_STEP[exit]
            tile, entry = (tile[0] + d_row, tile[1] + d_col), _OPPOSITE[exit]
        lengths.append((forward, reverse))
    road_map = RoadMap(source, rows, cols, tuple(segments), tuple(lengths))
    if not road_map.straight_segments():
        raise ValueError(f"map_name: {source}: the map needs at least one straight tile to start on")
    return road_map


def load_map(map_name: str) -> RoadMap:
    """A built-in map by name, or a map file in the text format of this module."""
    if map_name in BUILTIN_MAPS:
        return parse_map(BUILTIN_MAPS[map_name], map_name)
    path = Path(map_name)
    if not path.is_file():
        known = ", ".join(sorted(BUILTIN_MAPS))
        raise ValueError(f"map_name: unknown map {map_name!r}; known maps: {known}, or a path to a map file")
    return parse_map(path.read_text(), str(path))
