"""Tile maps: the text format, its errors and the lane geometry built from it."""

from __future__ import annotations

import math

import pytest

from ddpg.envs.lane_following.maps import BUILTIN_MAPS, TILE_SIZE, load_map, parse_map


@pytest.mark.parametrize("name", sorted(BUILTIN_MAPS))
def test_builtin_maps_parse_into_closed_loops(name: str) -> None:
    road_map = load_map(name)
    tiles = sum(token not in (".", "grass") for token in BUILTIN_MAPS[name].split())
    assert len(road_map.segments) == tiles


def test_loop_lane_lengths_differ_by_direction_as_the_right_lane_is_inside_or_outside_the_curves() -> None:
    road_map = load_map("loop")
    # 4 straights and 4 quarter circles; the right lane runs at radius 0.18 m one way, 0.42 m the other.
    inner, outer = road_map.lane_lengths[0]
    assert sorted([inner, outer]) == pytest.approx([4 * TILE_SIZE + 2 * math.pi * r for r in (0.18, 0.42)])


def test_map_file_path_is_loaded(tmp_path) -> None:
    path = tmp_path / "track.txt"
    path.write_text("# two-row loop\nSE EW SW\nNE EW NW\n")
    road_map = load_map(str(path))
    assert (road_map.rows, road_map.cols, len(road_map.segments)) == (2, 3, 6)


def test_unknown_map_name_lists_the_known_maps() -> None:
    with pytest.raises(ValueError, match=r"map_name.*'nowhere'.*loop, udem, zigzag"):
        load_map("nowhere")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SE EW SW\nNE EW\n", "different numbers of tiles"),
        ("SE XW\nNE NW\n", "'XW'"),
        ("SE EW SW\nNE EW NW\n.. NS ..\n", "'..'"),
        ("SE SW\nNE NESW\n", "intersections are not supported"),
        ("SE SW\nNE .\n", "does not continue"),
        ("# nothing\n", "no rows"),
        (". .\n. .\n", "no road tiles"),
    ],
)
def test_malformed_map_is_rejected_naming_map_name(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="map_name") as error:
        parse_map(text, "bad.txt")
    assert problem in str(error.value)


def test_map_of_curves_only_is_rejected_as_there_is_no_straight_start() -> None:
    with pytest.raises(ValueError, match="straight tile"):
        parse_map("SE SW\nNE NW\n")
