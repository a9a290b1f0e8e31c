"""A small finished Pendulum run, and copies of it resumable from its step-100 checkpoint."""

import os
import shutil
from pathlib import Path

import pytest

from ddpg.cli import main

FAST = [
    "--set",
    "hidden_sizes=[16,16]",
    "batch_size=16",
    "learning_starts=50",
    "max_episode_steps=50",
    "eval_every=100",
    "eval_episodes=1",
    "checkpoint_every=100",
    "progress=false",
    "video=false",
    "tensorboard=false",
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--env", "Pendulum-v1", "--steps", "150", "--run-dir", str(run), *FAST]) == 0
    return run


@pytest.fixture
def run(finished_run, tmp_path) -> Path:
    """A copy of the run whose latest checkpoint (step 100) has 50 steps still to go."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy, symlinks=True)
    (copy / "summary.json").unlink()
    latest = copy / "checkpoints" / "latest"
    os.replace(latest, copy / "checkpoints" / "old-latest")
    os.symlink("step_000000100", latest)
    return copy


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
