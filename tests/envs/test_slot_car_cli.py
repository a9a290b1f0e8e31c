"""`ddpg slotcar …` commands and training on SlotCarRacing-v0 through `ddpg train`."""

import json

import pytest
import yaml

from ddpg.cli import main
from ddpg.envs.slot_car.reference import reference
from tests.helpers import error_line

TINY = [
    "--set",
    "hidden_sizes=[16,16]",
    "batch_size=16",
    "learning_starts=100",
    "eval_every=300",
    "eval_episodes=1",
    "progress=false",
    "video=false",
    "env.max_time_s=3.0",
]

SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]


@pytest.fixture(scope="module")
def slot_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("slotcar") / "run"
    args = ["train", "--env", "SlotCarRacing-v0", "--steps", "300", "--run-dir", str(run), *TINY]
    assert main(args) == 0
    return run


def write_track(directory, name: str, data: dict) -> str:
    path = directory / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_short_training_on_the_slot_car_writes_a_run_directory(slot_run):
    summary = json.loads((slot_run / "summary.json").read_text())
    assert summary["env_id"] == "SlotCarRacing-v0"
    assert summary["total_steps"] == 300
    assert (slot_run / "checkpoints" / "latest").exists()


def test_reference_json_agrees_with_the_reference_function(capsys):
    assert main(["slotcar", "reference", "--track", "oval", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = reference("oval")
    const = expected["constant_throttle"]["lap_time"]
    assert printed["constant_throttle"]["lap_time"] == pytest.approx(const)
    assert printed["optimal"]["lap_time"] == pytest.approx(expected["optimal"]["lap_time"])
    assert printed["ratio"] == pytest.approx(expected["ratio"])
    assert printed["profile"]["v"] == pytest.approx(expected["profile"]["v"])


def test_reference_text_names_both_lap_times(capsys):
    assert main(["slotcar", "reference", "--track", "oval"]) == 0
    out = capsys.readouterr().out
    expected = reference("oval")
    assert f"{expected['constant_throttle']['lap_time']:.3f} s" in out
    assert f"{expected['optimal']['lap_time']:.3f} s" in out


def test_profile_writes_a_png_for_a_trained_run(slot_run, tmp_path, capsys):
    out = tmp_path / "profile.png"
    assert main(["slotcar", "profile", str(slot_run), "--out", str(out), "--track", "figure8"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("track", "message"),
    [
        ("nope", "--track nope: unknown track 'nope'"),
        ({"points": SQUARE[:3]}, "needs at least 4 distinct points"),
        ({"points": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "crosses itself"),
        ({"points": SQUARE, "closed": False}, "must end where they start"),
    ],
)
def test_reference_of_a_bad_track_is_one_error_line_exit_2(track, message, tmp_path, capsys):
    spec = track if isinstance(track, str) else write_track(tmp_path, "track.yaml", track)
    assert main(["slotcar", "reference", "--track", spec]) == 2
    line = error_line(capsys)
    assert line.startswith("error: --track ")
    assert message in line


def test_training_with_a_non_positive_physical_constant_is_refused_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--env", "SlotCarRacing-v0", "--run-dir", str(run), "--set", "env.physics.mass=-1"]
    assert main(args) == 2
    assert "physics.mass: must be positive" in error_line(capsys)
    assert not run.exists()


def test_profile_of_a_bad_track_is_refused_without_writing(slot_run, tmp_path, capsys):
    out = tmp_path / "profile.png"
    assert main(["slotcar", "profile", str(slot_run), "--out", str(out), "--track", "nope"]) == 2
    assert "--track nope" in error_line(capsys)
    assert not out.exists()


def test_profile_of_a_run_on_another_env_is_refused(tmp_path, capsys):
    run = tmp_path / "pendulum"
    args = ["train", "--env", "Pendulum-v1", "--steps", "50", "--run-dir", str(run), *TINY[:-1]]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["slotcar", "profile", str(run)]) == 2
    assert "is not a SlotCarRacing-v0 run" in error_line(capsys)


def _reject_constant(name: str):
    raise AssertionError(f"non-standard JSON constant {name}")


def test_evaluate_json_of_a_slot_car_run_is_strict_json_with_lap_counts(slot_run, capsys):
    assert main(["evaluate", str(slot_run), "--episodes", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=_reject_constant)
    assert "laps_completed" in result["info_means"]


def test_evaluate_records_a_race_video(slot_run, tmp_path, capsys):
    video = tmp_path / "race.mp4"
    assert main(["evaluate", str(slot_run), "--episodes", "1", "--video", str(video)]) == 0
    assert video.stat().st_size > 1000
