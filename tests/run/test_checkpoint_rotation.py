"""Step checkpoint rotation in a run directory: which checkpoints stay, which are released (made
weights-only with `checkpoint_replay: latest`), and what a kill in the middle of it leaves."""

import os
from pathlib import Path

import pytest

from ddpg.config import Config
from ddpg.files import atomic_directory, remove_leftovers
from ddpg.run.run_dir import RunDirectory


@pytest.fixture
def run(tmp_path) -> RunDirectory:
    run = RunDirectory(tmp_path / "run", Config(tensorboard=False), 0)
    yield run
    run.close()


def save(directory: Path) -> None:
    atomic_directory(directory, lambda tmp: (tmp / "weights").write_text(directory.name))


def kept(run: RunDirectory) -> list[str]:
    return sorted(p.name for p in run.checkpoints.iterdir())


def test_the_newest_are_kept_and_all_but_the_one_written_are_released(run):
    released: list[str] = []
    for step in (100, 200, 300, 400):
        run.checkpoint(step, 3, save, lambda d: released.append(d.name))
    assert kept(run) == ["latest", "step_000000200", "step_000000300", "step_000000400"]
    assert os.readlink(run.checkpoints / "latest") == "step_000000400"
    assert released[-2:] == ["step_000000200", "step_000000300"]
    assert "step_000000400" not in released


@pytest.mark.parametrize("keep", [1, 3])
def test_a_checkpoint_past_the_step_written_by_a_killed_session_goes(run, keep):
    # Killed after writing step 400 but before pointing `latest` at it: the next session went on from
    # step 300 and checkpoints at 350. Step 400 belongs to no run any more; step 350 must survive.
    for step in (200, 300, 400):
        run.checkpoint(step, 3, save)
    (run.checkpoints / "latest").unlink()
    os.symlink("step_000000300", run.checkpoints / "latest")
    released: list[str] = []
    run.checkpoint(350, keep, save, lambda d: released.append(d.name))
    expected = ["step_000000350"] if keep == 1 else ["step_000000200", "step_000000300", "step_000000350"]
    assert kept(run) == ["latest", *expected]
    assert os.readlink(run.checkpoints / "latest") == "step_000000350"
    assert released == expected[:-1]


def test_a_kill_between_the_two_renames_of_a_rewrite_leaves_the_old_version_to_put_back(tmp_path):
    # atomic_directory renames the old version away, then the new one into place; killed in between,
    # only the old one is left, under a temporary name.
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / ".old-step_000000200-0a1b2c3d").mkdir(parents=True)
    (checkpoints / ".old-step_000000200-0a1b2c3d" / "weights").write_text("old")
    (checkpoints / ".tmp-step_000000200-4e5f6a7b").mkdir()
    (checkpoints / "step_000000300").mkdir()
    (checkpoints / ".old-step_000000300-8c9d0e1f").mkdir()  # its rewrite completed: garbage
    remove_leftovers(checkpoints)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_000000200", "step_000000300"]
    assert (checkpoints / "step_000000200" / "weights").read_text() == "old"
