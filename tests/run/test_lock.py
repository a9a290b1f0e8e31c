"""One writer per run directory: a second `train` or `resume` of it is one error line naming the holder."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import ddpg
from ddpg.cli import main
from ddpg.run.lock import RunInUse, RunLock
from tests.helpers import error_line

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_state_run"
HOLD = (
    "import sys, time; from pathlib import Path; from ddpg.run.lock import RunLock; "
    "lock = RunLock.acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)"
)


def holder(run: Path) -> subprocess.Popen:
    """Another process holding `run`'s lock."""
    src = str(Path(ddpg.__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)],
        env={**os.environ, "PYTHONPATH": src},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def run(tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run, symlinks=True)
    os.remove(run / "summary.json")
    os.remove(run / "checkpoints" / "latest")
    os.symlink("step_000000300", run / "checkpoints" / "latest")
    return run


def test_a_second_writer_is_refused_naming_the_process_and_changes_nothing(run, capsys):
    before = {name: (run / name).read_bytes() for name in ("metrics.csv", "updates.csv", "eval.csv")}
    proc = holder(run)
    try:
        assert main(["resume", str(run)]) == 2
        assert error_line(capsys) == f"error: {run} is in use by process {proc.pid}; wait for it or stop it"
    finally:
        proc.kill()
        proc.wait()
    assert {name: (run / name).read_bytes() for name in before} == before  # logs not cut back


def test_two_trainings_into_one_new_directory_leave_one_run(tmp_path, capsys):
    run = tmp_path / "new"
    proc = holder(run)  # holds the lock of a directory that is otherwise still empty
    try:
        args = ["train", "--run-dir", str(run), "--steps", "10", "--set", "progress=false", "video=false"]
        assert main(args) == 2
        assert "is in use by process" in error_line(capsys)
        assert sorted(p.name for p in run.iterdir()) == [".lock"]
    finally:
        proc.kill()
        proc.wait()


def test_a_lock_dies_with_its_process(run, capsys):
    proc = holder(run)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main(["resume", str(run)]) == 0
    capsys.readouterr()


def test_the_agent_holds_its_run_directory_until_closed(tmp_path):
    lock = RunLock.acquire(tmp_path / "a")
    with pytest.raises(RunInUse):
        RunLock.acquire(tmp_path / "a")
    lock.release()
    RunLock.acquire(tmp_path / "a").release()  # nothing lingers: the same process takes it again
