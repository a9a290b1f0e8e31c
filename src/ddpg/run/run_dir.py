"""The run directory as the loop writes it: config.yaml, the CSV logs (and TensorBoard), evaluations,
videos, checkpoint rotation, the best policy, and summary.json with the training figure at the end.

Checkpoint *contents* are persistence.py's; this module decides when and where they go and keeps the
links `checkpoints/latest` and `checkpoints/best` pointing at whole checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ddpg.config import Config, config_yaml
from ddpg.files import TMP, atomic_write, discard, point_link, remove_leftovers
from ddpg.run.evaluation import EvalResult
from ddpg.run.lock import LOCK_FILE
from ddpg.run.logs import (
    ACTORS_COLUMNS,
    EVAL_COLUMNS,
    METRICS_COLUMNS,
    UPDATES_COLUMNS,
    ActorsLog,
    CsvLog,
    TeeLog,
    TensorBoardLog,
)
from ddpg.types import Episode

Save = Callable[[Path], None]  # writes a checkpoint into the directory given


def release_older(checkpoints: Path, release: Callable[[Path], None]) -> None:
    """Call `release` on each step checkpoint but the one `latest` names, after putting back one that a
    kill left in the middle of being rewritten."""
    remove_leftovers(checkpoints)
    latest = checkpoints / "latest"
    name = os.readlink(latest) if latest.is_symlink() else None
    for kept in sorted(p for p in checkpoints.glob("step_*") if p.is_dir() and p.name != name):
        release(kept)


def step_checkpoint(step: int) -> str:
    """The name of a step's checkpoint: zero-padded, so that names sort as steps do."""
    return f"step_{step:09d}"


class RunExists(ValueError):
    """The run directory holds another run; two runs are never mixed in one."""

    def __init__(self, root: Path) -> None:
        resumable = (root / "checkpoints" / "latest").exists()
        hint = f" (or continue it: ddpg resume {root}, DDPG.resume)" if resumable else ""
        super().__init__(f"run directory {root} already holds a run; choose another run directory{hint}")


def holds_a_run(root: Path) -> bool:
    """Whether `root` exists with anything in it but a lock file (a start that wrote nothing yet)."""
    return root.exists() and (not root.is_dir() or any(p.name != LOCK_FILE for p in root.iterdir()))


def write_summary(root: Path, summary: dict[str, Any]) -> None:
    """What a run directory gets after its last step: summary.json and plots/training.png."""
    from ddpg.run.plots import training_figure

    atomic_write(root / "summary.json", json.dumps(summary, indent=1))
    training_figure([root], root / "plots" / "training.png")


# What a run writes at its top level, and the names of its work in progress: all that a failed start
# may have left, and all `FailedStart.undo` removes.
WRITTEN = ("config.yaml", "metrics.csv", "updates.csv", "eval.csv", "actors.csv", "summary.json",
           "checkpoints", "plots", "videos", LOCK_FILE, "events.out.tfevents.*", f"{TMP}*")  # fmt: skip


class FailedStart:
    """Remembers what a run directory held before a start, so that a start failing before its first step
    can remove what it wrote and leave nothing that blocks a retry: the files ddpg writes that were not
    there before, then the directory and the parents it created, when empty."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created = [p for p in (root, *root.parents) if not p.exists()]  # deepest first
        self.before = set(os.listdir(root)) if root.is_dir() else set()

    def undo(self) -> None:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name in self.before or not any(entry.match(pattern) for pattern in WRITTEN):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        for directory in self.created:
            try:
                directory.rmdir()
            except OSError:  # not empty (someone else's files), or gone
                return


def video_name(config: Config, step: int, total: int) -> str | None:
    """videos/final.mp4 at the end; step_N.mp4 at every `video_every`-th evaluation before it."""
    log = config.logging
    if not log.video:
        return None
    if step == total:
        return "final.mp4"
    if log.video_every and (step // log.eval_every) % log.video_every == 0:
        return f"step_{step}.mp4"
    return None


class RunDirectory:
    """The open logs of a run directory and the checkpoints in it."""

    def __init__(self, root: Path, config: Config, step: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(root / "config.yaml", config_yaml(config))
        self.root = root
        self.checkpoints = root / "checkpoints"
        tb = TensorBoardLog.open(root, config.to_dict(), step) if config.logging.tensorboard else None
        self.tensorboard = tb
        self.metrics = TeeLog(
            CsvLog(root / "metrics.csv", METRICS_COLUMNS), tb, "episode", skip=("episode", "wall_time")
        )
        self.updates = TeeLog(CsvLog(root / "updates.csv", UPDATES_COLUMNS), tb, "train")
        self.evals = TeeLog(CsvLog(root / "eval.csv", EVAL_COLUMNS), tb, "eval")
        self.actors = (
            ActorsLog(CsvLog(root / "actors.csv", ACTORS_COLUMNS), tb) if config.loop.actors else None
        )

    def episode(self, step: int, episode: Episode, wall_time: float) -> None:
        self.metrics.write(
            {
                "step": step,
                "episode": episode.index,
                "return": episode.ret,
                "length": episode.length,
                "wall_time": round(wall_time, 3),
            }
        )

    def evaluation(self, step: int, result: EvalResult) -> None:
        self.evals.write({"step": step, "mean_return": result.mean_return, "std_return": result.std_return})

    def video_path(self, name: str | None) -> Path | None:
        return self.root / "videos" / name if name is not None else None

    def checkpoint(
        self, step: int, keep: int, save: Save, release: Callable[[Path], None] | None = None
    ) -> None:
        """Write checkpoints/step_N, point checkpoints/latest at it, keep the newest `keep`; `release`
        is then called on each kept one but step_N (`release_older`)."""
        name = step_checkpoint(step)
        remove_leftovers(self.checkpoints)
        latest = self.checkpoints / "latest"
        # The same step again (the end of the loop) is not rewritten, which would briefly unlink `latest`.
        if not (latest.is_symlink() and os.readlink(latest) == name):
            save(self.checkpoints / name)
            point_link(latest, name)
        steps = sorted(p for p in self.checkpoints.glob("step_*") if p.is_dir())
        # One numbered past step_N was written by a session killed before it pointed `latest` at it;
        # this session went on from an earlier checkpoint, so that one is of a run that no longer is.
        current = [p for p in steps if p.name <= name]  # ends with step_N
        for old in [p for p in steps if p.name > name] + current[:-keep]:
            discard(old)
        if release is not None:
            release_older(self.checkpoints, release)

    def keep_best(self, step: int, mean: float, best: float | None, save: Save) -> bool:
        """Weights of an evaluation better than `best` in checkpoints/best (a link flipped atomically);
        whether it was better."""
        if not np.isfinite(mean) or (best is not None and mean <= best):
            return False
        name = f"best_{step_checkpoint(step)}"
        link = self.checkpoints / "best"
        if link.is_symlink() and os.readlink(link) == name:
            return True  # already written by the session that crashed after it
        previous = link.resolve() if link.is_symlink() else None
        save(self.checkpoints / name)
        point_link(link, name)
        if previous is not None and previous.name != name and previous.is_dir():
            discard(previous)
        return True

    def close(self) -> None:
        for log in (self.metrics, self.updates, self.evals, self.actors):
            if log is not None:
                log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
