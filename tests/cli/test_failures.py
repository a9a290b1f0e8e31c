"""Failures a user can cause or meet: a path that cannot be written, a full disk, an environment that
breaks. Each is one line `error: …` on stderr (no traceback), exit 2 for input and 1 for the environment
or the machine, and nothing left that blocks running the same command again."""

import os
import subprocess
from pathlib import Path

import pytest

from ddpg.cli import main
from ddpg.run.checkpoint import verify
from tests.cli.test_bad_input import FAST
from tests.helpers import error_line

ROOT = os.geteuid() == 0


def train(run: Path, *args: str) -> list[str]:
    return ["train", "--run-dir", str(run), "--steps", "100", *args, *FAST]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("fs") / "run"
    assert main(train(run, "--env", "tests.helpers:CountingEnv")) == 0
    return run


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, read_only): a fresh tmpfs under tmp_path (root only), unmounted afterwards."""
    if not ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = []

    def mount(size: str = "1m", read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=False)
        if done.returncode != 0:
            pytest.skip("this machine does not let root mount a tmpfs")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "--lazy", str(point)], check=False)


@pytest.fixture
def read_only(tmp_path, tmpfs):
    """A directory nothing can be written into, and the exit status that says so: a read-only tmpfs
    as root (EROFS, a property of the machine: 1), a chmod 555 directory otherwise (EACCES: 2)."""
    if ROOT:
        return tmpfs(read_only=True), 1
    place = tmp_path / "read-only"
    place.mkdir()
    place.chmod(0o555)
    return place, 2


# ---------------------------------------------------------------------------------------------------
# --debug


def test_debug_lets_the_failure_raise(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    broken = ["train", "--env", "tests.helpers:BrokenEnv", "--set", "env.fail_in=init"]
    assert main(broken) == 1
    assert "failed in make: RuntimeError: boom" in error_line(capsys)
    with pytest.raises(Exception, match="failed in make"):
        main(["--debug", *broken])
    monkeypatch.setenv("DDPG_DEBUG", "1")
    with pytest.raises(Exception, match="failed in make"):
        main(broken)


# ---------------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("a-file/run", "a part of the path is a file, not a directory"),
        ("x" * 300, "a name in the path is too long"),
    ],
)
def test_run_dir_that_cannot_be_made_is_one_line(where, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("")
    assert main(train(Path(where))) == 2
    out = capsys.readouterr()
    assert "run directory:" not in out.out  # no line naming a run that was never made
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


def test_run_dir_in_a_read_only_place_is_one_line(read_only, capsys):
    place, status = read_only
    assert main(train(place / "run")) == status
    assert f"{place / 'run'}:" in error_line(capsys)
    assert os.listdir(place) == []


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_into_an_existing_directory_is_one_line(suffix, finished_run, tmp_path, capsys):
    target = tmp_path / f"video{suffix}"
    target.mkdir()
    assert (
        main(["evaluate", str(finished_run), "--env", "tests.helpers:CountingEnv", "--video", str(target)])
        == 2
    )
    assert error_line(capsys) == f"error: {target}: it is a directory; give a file name"
    assert os.listdir(target) == [] and os.listdir(tmp_path) == [target.name]


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_into_a_read_only_place_is_one_line(suffix, finished_run, read_only, capsys):
    place, status = read_only
    assert (
        main(
            [
                "evaluate",
                str(finished_run),
                "--env",
                "tests.helpers:CountingEnv",
                "--video",
                str(place / f"v{suffix}"),
            ]
        )
        == status
    )
    assert error_line(capsys).startswith(f"error: {place / f'v{suffix}'}: ")
    assert os.listdir(place) == []


def test_plot_into_a_read_only_place_is_one_line(finished_run, read_only, capsys):
    place, status = read_only
    assert main(["plot", str(finished_run), "--out", str(place / "p.png")]) == status
    assert error_line(capsys).startswith(f"error: {place / 'p.png'}: ")
    assert os.listdir(place) == []


def test_plot_under_a_file_is_one_line(finished_run, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert main(["plot", str(finished_run), "--out", str(tmp_path / "a-file" / "p.png")]) == 2
    assert "a part of the path is a file, not a directory" in error_line(capsys)


# ---------------------------------------------------------------------------------------------------
# A full disk


def test_disk_full_before_the_first_step_leaves_nothing(tmpfs, capsys):
    disk = tmpfs("48k")  # the config and the logs fit, the first checkpoint does not
    assert main(train(disk / "run")) == 1
    assert "no space left on its device" in error_line(capsys)
    assert os.listdir(disk) == []


def test_disk_full_at_a_later_checkpoint_keeps_the_run_resumable(tmpfs, capsys):
    disk = tmpfs("200k")  # the checkpoint at step 0 fits, the one at step 100 does not
    run = disk / "run"
    assert main(train(run, "--steps", "150")) == 1
    line = error_line(capsys)
    assert f"{run / 'checkpoints'}" in line and "no space left on its device" in line
    assert f"ddpg resume {run}" in line
    latest = run / "checkpoints" / "latest"
    assert os.readlink(latest) == "step_000000000"
    verify(latest.resolve())  # whole: the failed write was atomic
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
    assert main(["resume", str(run)]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------------------------------------------
# Environments that break


@pytest.mark.parametrize(
    ("env", "settings", "message"),
    [
        ("BrokenEnv", ["env.fail_in=init"], "failed in make: RuntimeError: boom"),
        ("BrokenEnv", ["env.fail_in=init", "env.error=KeyError"], "failed in make: KeyError: 'boom'"),
        ("BrokenEnv", ["env.fail_in=reset"], "failed at step 0 in reset(): RuntimeError: boom"),
        ("BrokenEnv", [], "failed at step 1 in step(): RuntimeError: boom"),
        ("BrokenEnv", ["n_envs=2"], "failed at step 1 in step(): RuntimeError: boom"),
        ("BrokenEnv", ["n_envs=2", "vectorization=sync"], "failed at step 1 in step(): RuntimeError: boom"),
        ("BrokenEnv", ["env.fail_in=reset", "n_envs=2"], "in reset(): RuntimeError: boom"),
        ("BadObservationEnv", [], "at step 1 in step(): returned an observation of shape (3,) float32"),
        (
            "BadObservationEnv",
            ["env.bad=dtype", "env.call=reset"],
            "in reset(): returned an observation of shape (2,) <U1; its observation space is (2,) float32",
        ),
    ],
)
def test_environment_failure_is_one_line_and_leaves_nothing(env, settings, message, tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*train(run, "--env", f"tests.helpers:{env}"), *settings]) == 1
    line = error_line(capsys)
    assert line.startswith(f"error: environment 'tests.helpers:{env}' failed ") and message in line
    assert os.listdir(tmp_path) == []  # nothing that blocks a retry


def test_bad_environment_argument_fails_in_step_naming_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train(run, "--env", "Pendulum-v1", "--set", "env.g=abc")) == 1
    line = error_line(capsys)
    assert line.startswith("error: environment 'Pendulum-v1' failed at step 1 in step(): TypeError")
    assert os.listdir(tmp_path) == []


def test_zero_dimensional_observation_space_is_refused(tmp_path, capsys):
    assert main(train(tmp_path / "run", "--env", "tests.helpers:ScalarObservationEnv")) == 2
    assert "has an observation space of shape ()" in error_line(capsys)
    assert os.listdir(tmp_path) == []


def test_failed_start_into_an_existing_empty_directory_keeps_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(train(run, "--env", "tests.helpers:BrokenEnv")) == 1
    error_line(capsys)
    assert run.is_dir() and os.listdir(run) == []
    assert main(train(run)) == 0  # the same command again, with an env that works
    capsys.readouterr()


def test_environment_failure_after_training_progressed_keeps_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(train(run, "--steps", "150", "--env", "tests.helpers:BrokenEnv", "--set", "env.at_step=120"))
        == 1
    )
    assert "failed at step 120 in step()" in error_line(capsys)
    assert os.readlink(run / "checkpoints" / "latest") == "step_000000100"


def test_environment_failure_during_evaluation_names_the_episode(finished_run, capsys):
    args = ["evaluate", str(finished_run), "--env", "tests.helpers:BrokenEnv", "--episodes", "1"]
    assert main(args) == 1
    line = error_line(capsys)
    assert "failed at step 1 of evaluation episode 1 in step(): RuntimeError: boom" in line


def test_a_reader_that_stops_reading_ends_the_command_quietly():
    # `ddpg config --fields | head`: head exits early, and our next write meets a closed pipe. That is
    # no failure to report (it printed "error: Broken pipe"); the status is a shell's for SIGPIPE.
    import sys

    command = [sys.executable, "-m", "ddpg", "config", "--fields"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        process.stdout.close()  # before the command writes a byte: every write meets the closed pipe
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 141
    assert stderr == b""
