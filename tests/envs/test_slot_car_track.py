import json
import math

import numpy as np
import pytest

from ddpg.envs.slot_car.track import BUILTIN_TRACKS, builtin_track, make_track, track_from_points


def circle_points(radius: float, n: int = 48, clockwise: bool = False) -> list[list[float]]:
    angles = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    if clockwise:
        angles = -angles
    return [[radius * math.cos(a), radius * math.sin(a)] for a in angles]


def test_circle_has_constant_curvature_one_over_radius():
    track = track_from_points(circle_points(0.5))
    assert track.kappa == pytest.approx(2.0, rel=2e-3)


def test_circle_length_is_its_circumference():
    track = track_from_points(circle_points(0.5))
    assert track.length == pytest.approx(math.pi, rel=1e-3)


def test_curvature_is_positive_turning_left_and_negative_turning_right():
    assert np.all(track_from_points(circle_points(1.0)).kappa > 0)
    assert np.all(track_from_points(circle_points(1.0, clockwise=True)).kappa < 0)


def test_samples_are_evenly_spaced_along_the_curve():
    track = track_from_points(circle_points(1.0))
    steps = np.hypot(np.diff(track.x), np.diff(track.y))
    assert steps == pytest.approx(track.spacing, rel=1e-3)


@pytest.mark.parametrize("name", BUILTIN_TRACKS)
def test_builtin_tracks_build(name):
    track = builtin_track(name)
    assert track.name == name
    assert 5.0 < track.length < 30.0
    assert np.all(np.isfinite(track.kappa))


def test_grand_prix_is_the_longest_builtin():
    lengths = {name: builtin_track(name).length for name in BUILTIN_TRACKS}
    assert max(lengths, key=lengths.get) == "grand_prix"


def test_figure8_shape_without_crossings_allowed_is_rejected():
    figure8 = builtin_track("figure8")
    with pytest.raises(ValueError, match="crosses itself"):
        track_from_points(np.stack([figure8.x[::40], figure8.y[::40]], axis=1))


def test_figure8_shape_with_crossings_allowed_is_accepted():
    figure8 = builtin_track("figure8")
    track = make_track(
        {"points": np.stack([figure8.x[::40], figure8.y[::40]], axis=1).tolist(), "crossings_allowed": True}
    )
    assert track.length == pytest.approx(figure8.length, rel=1e-2)


def test_repeated_first_point_closes_the_loop_explicitly():
    pts = circle_points(1.0)
    implicit = track_from_points(pts)
    explicit = track_from_points([*pts, pts[0]])
    assert explicit.length == pytest.approx(implicit.length)


def test_track_file_yaml_is_loaded_with_its_name(tmp_path):
    path = tmp_path / "ring.yaml"
    rows = "\n".join(f"  - [{x:.6f}, {y:.6f}]" for x, y in circle_points(1.0))
    path.write_text(f"name: ring\npoints:\n{rows}\n")
    track = make_track(str(path))
    assert track.name == "ring"
    assert track.length == pytest.approx(2.0 * math.pi, rel=1e-3)


def test_track_file_json_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "loop.json"
    path.write_text(json.dumps({"points": circle_points(1.0)}))
    assert make_track(str(path)).name == "loop"


def test_open_polyline_that_closes_itself_is_accepted():
    pts = circle_points(1.0)
    track = make_track({"points": [*pts, pts[0]], "closed": False})
    assert track.length == pytest.approx(2.0 * math.pi, rel=1e-3)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("monaco", r"track: unknown track 'monaco'; built-in tracks are oval, figure8, grand_prix"),
        ([[0, 0], [1, 0], [1, 1]], r"track: needs at least 4"),
        ([[0, 0], [1, 1], [1, 0], [0, 1]], r"track: .*crosses itself"),
        ({"points": circle_points(1.0), "closed": False}, r"track: .*closed: false"),
        ({"points": circle_points(1.0), "colour": "red"}, r"track: unknown keys \['colour'\]"),
        ([[0, 0], [1, 0], [1, 0], [0, 1]], r"track: consecutive points coincide"),
        ([[0, 0], [1, 0], [1, float("nan")], [0, 1]], r"track: points must be finite"),
        ([1, 2, 3, 4], r"track: points must be a list of \[x, y\] pairs"),
        ("missing_file.yaml", r"track: no such track file"),
    ],
)
def test_bad_track_raises_value_error_naming_track(spec, message):
    with pytest.raises(ValueError, match=message):
        make_track(spec)
