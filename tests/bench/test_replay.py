"""bench/replay.py: bytes per transition and sampling rate of the frame replay buffer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ddpg
from tests.bench import BENCH, script
from tests.helpers import error_line

replay = script("replay")
main = replay.main
SMALL = ["--frame-shape", "8x8x3", "--transitions", "200", "--batch-size", "16", "--episode-length", "20"]


def test_json_reports_every_field_of_the_result(capsys):
    assert main([*SMALL, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        "frame_shape",
        "frame_stack",
        "transitions",
        "episode_length",
        "bytes_per_transition",
        "frames_per_transition",
        "naive_bytes_per_transition",
        "batch_size",
        "stacks_per_second",
        "fill_transitions_per_second",
    }
    assert out["frame_shape"] == [8, 8, 3] and out["frame_stack"] == 3 and out["transitions"] == 200
    assert out["bytes_per_transition"] < out["naive_bytes_per_transition"]


def test_text_output_names_the_bytes_and_the_sampling_rate(capsys):
    assert main(SMALL) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("frames 8x8x3, stack 3, 200 transitions: ") and "bytes per transition" in first
    assert second.startswith("sampling: ") and second.endswith("stacks/s in batches of 16")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frame-shape", "ax8"], "--frame-shape must look like 64x64x3, got 'ax8'"),
        (["--frame-shape", "8x0x3"], "--frame-shape must look like 64x64x3 with positive sizes"),
        (["--transitions", "10"], "--batch-size (256) must not exceed --transitions (10)"),
        (["--frame-stack", "0"], "argument --frame-stack: expected a positive integer"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    assert message in error_line(capsys)


def test_runs_as_a_script(tmp_path):
    # The script imports the ddpg under test, wherever the test run found it.
    env = {**os.environ, "PYTHONPATH": str(Path(ddpg.__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, str(BENCH / "replay.py"), *SMALL, "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["batch_size"] == 16
