"""What a run writes as it goes: CSV logs (the source of truth) and the progress bar."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

METRICS_COLUMNS = ("step", "episode", "return", "length", "wall_time")
UPDATES_COLUMNS = ("step", "critic_loss", "actor_loss", "td_error", "q_mean")
EVAL_COLUMNS = ("step", "mean_return", "std_return")


class CsvLog:
    """Append-only CSV with a fixed header; each row is flushed so a killed run keeps its rows."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(columns)
            self._file.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow([_format(row[c]) for c in self.columns])
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def read_csv(path: Path) -> dict[str, list[float]]:
    """Columns of a log as floats (empty lists when the file has only its header)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames or []
    return {c: [float(r[c]) for r in rows] for c in columns}


class Progress:
    """A rich progress bar: steps, steps/s, last episode return, last eval return."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.0f} steps/s"),
            TextColumn("return {task.fields[ret]}"),
            TextColumn("eval {task.fields[eval]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("train", total=total, completed=start, rate=0.0, ret="-", eval="-")
        self._bar.start()

    def update(
        self, step: int, rate: float, episode_return: float | None = None, eval_return: float | None = None
    ) -> None:
        if not self.enabled:
            return
        fields: dict[str, Any] = {"rate": rate}
        if episode_return is not None:
            fields["ret"] = f"{episode_return:.1f}"
        if eval_return is not None:
            fields["eval"] = f"{eval_return:.1f}"
        self._bar.update(self._task, completed=step, **fields)

    def close(self) -> None:
        if self.enabled:
            self._bar.stop()
