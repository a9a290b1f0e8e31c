"""Killed at any moment means resumable: a first checkpoint before the first step, and Ctrl-C or
SIGTERM end training after the current step with a checkpoint and the summary."""

import json
import signal
import subprocess
import sys
import time

import pytest

from ddpg.cli import main
from tests.run.test_resume import ARGS, _metrics_rows, _subprocess_env, assert_same_logs

# The same run without periodic checkpoints: every evaluation (200 steps) is one now.
DEFAULT_CHECKPOINTS = [a for a in ARGS if not a.startswith(("checkpoint_every=", "keep_checkpoints="))]


def start(run, args=ARGS) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ddpg.cli", *args, "--run-dir", str(run)],
        env=_subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, proc, seconds=120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_run_killed_before_its_first_periodic_checkpoint_resumes(reference, tmp_path, capsys):
    run = tmp_path / "run"
    proc = start(run, DEFAULT_CHECKPOINTS)
    wait_for(lambda: (run / "metrics.csv").is_file() and _metrics_rows(run) >= 1, proc)  # step 50 of 600
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert main(["resume", str(run)]) == 0
    assert_same_logs(reference, run)
    capsys.readouterr()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_writes_a_checkpoint_and_the_summary_and_resume_continues_exactly(
    reference, tmp_path, capsys, signum
):
    run = tmp_path / "run"
    proc = start(run)
    wait_for(lambda: (run / "metrics.csv").is_file() and _metrics_rows(run) >= 5, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.startswith("error: interrupted at step ") and "ddpg resume" in err and "Traceback" not in err
    step = int(err.split("step ")[1].split(";")[0])
    assert json.loads((run / "summary.json").read_text())["total_steps"] == step
    assert (run / "checkpoints" / "latest").resolve().name == f"step_{step:09d}"
    assert main(["resume", str(run)]) == 0
    assert_same_logs(reference, run)
    capsys.readouterr()
