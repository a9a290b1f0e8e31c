"""What a run writes as it goes: CSV logs (the source of truth) and the progress bar."""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

METRICS_COLUMNS = ("step", "episode", "return", "length", "wall_time")
UPDATES_COLUMNS = ("step", "critic_loss", "actor_loss", "td_error", "q_mean")
EVAL_COLUMNS = ("step", "mean_return", "std_return")
# Runs with actors (docs/actors.md): one row per actor (actor 0..N-1) and one of totals (actor -1).
ACTORS_COLUMNS = ("step", "actor", "steps_per_s", "updates_per_s", "replay_ratio", "weight_lag", "restarts")


class CsvLog:
    """Append-only CSV with a fixed header; each row is flushed so a killed run keeps its rows."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns
        new = not path.exists() or path.stat().st_size == 0
        self._file = path.open("a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._append(columns)

    def write(self, row: dict[str, Any]) -> None:
        self._append([_format(row[c]) for c in self.columns])

    def _append(self, row: Sequence[str]) -> None:
        try:
            self._writer.writerow(row)
            self._file.flush()
        except OSError as e:  # a full disk: the error names no file unless told
            raise OSError(e.errno, e.strerror, str(self.path)) from e

    def close(self) -> None:
        self._file.close()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class LogError(ValueError):
    """A run's log cannot be read: missing, empty, garbled or not numbers; the message names the file."""


def read_csv(path: Path, columns: tuple[str, ...] = ()) -> dict[str, list[float]]:
    """Columns of a log as floats (empty lists when the file has only its header). A file without a
    header, without one of `columns`, with a row of the wrong length or a value that is not a number
    is a LogError naming the file (and the row)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        reason = e.strerror if isinstance(e, OSError) else "not a CSV log of this program"
        raise LogError(f"cannot read {path}: {reason}") from None
    if not header:
        raise LogError(f"{path} is empty (not even its header row)")
    missing = [c for c in columns if c not in header]
    if missing:
        raise LogError(f"{path} has no column {missing[0]!r}; it is not a log of this program")
    out: dict[str, list[float]] = {c: [] for c in header}
    for number, row in enumerate(rows, start=2):  # line numbers: the header is line 1
        if len(row) != len(header):
            raise LogError(f"{path}, line {number}: {len(row)} values for {len(header)} columns")
        for name, value in zip(header, row, strict=True):
            try:
                out[name].append(float(value))
            except ValueError:
                text = value if len(value) <= 40 else value[:35] + "…"
                raise LogError(f"{path}, line {number}: {name} {text!r} is not a number") from None
    return out


class Progress:
    """Steps, steps/s, last episode return, last evaluation: rich's live bar in a terminal, else a plain
    line per evaluation (a log file, CI or a notebook gets no redrawn bar and no control codes)."""

    def __init__(self, total: int, start: int = 0, mode: bool | str = True) -> None:
        if mode in (True, "auto"):
            mode = "bar" if sys.stdout.isatty() else "plain"
        self.enabled, self.plain, self.total = mode is not False, mode == "plain", total
        if not self.enabled or self.plain:
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
        if self.plain:
            if eval_return is not None:
                ret = "-" if episode_return is None else f"{episode_return:.1f}"
                print(
                    f"step {step}/{self.total}: {rate:.0f} steps/s, return {ret}, eval {eval_return:.1f}",
                    flush=True,
                )
            return
        fields: dict[str, Any] = {"rate": rate}
        if episode_return is not None:
            fields["ret"] = f"{episode_return:.1f}"
        if eval_return is not None:
            fields["eval"] = f"{eval_return:.1f}"
        self._bar.update(self._task, completed=step, **fields)

    def note(self, text: str) -> None:
        """A line of its own beside the progress (the actors' figures, at each evaluation)."""
        if not self.enabled:
            return
        if self.plain:
            print(text, flush=True)
        else:
            self._bar.console.print(text)

    def close(self) -> None:
        if self.enabled and not self.plain:
            self._bar.stop()


class TensorBoardLog:
    """TensorBoard events in the run directory, mirroring the CSVs (which stay the source of truth).

    The hyper-parameters go in as HParams (so `tensorboard --logdir SWEEP/runs` compares runs by them,
    against the last `eval/mean_return`) and as the config's YAML in a text panel.
    """

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    @staticmethod
    def open(root: Path, config: dict[str, Any], resume_step: int | None = None) -> TensorBoardLog | None:
        """A log writing into `root`, or None when TensorBoard is not installed. Continuing a run
        resumed at `resume_step`, TensorBoard hides the events an earlier session logged after that
        step, as the CSVs were cut back to it."""
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError:
            return None
        import yaml

        purge_step = None if not resume_step else resume_step + 1
        writer = SummaryWriter(log_dir=str(root), purge_step=purge_step)
        for summary in hparams(_flat_hparams(config), {"eval/mean_return": math.nan}):
            writer._get_file_writer().add_summary(summary)
        text = yaml.safe_dump(config, sort_keys=False)
        writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), 0)
        return TensorBoardLog(writer)

    def scalars(self, section: str, row: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        step = int(row["step"])
        for name, value in row.items():
            if name != "step" and name not in skip:
                self._writer.add_scalar(f"{section}/{name}", float(value), step)

    def close(self) -> None:
        self._writer.close()


def _flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flat_hparams(value, f"{prefix}{key}."))
        elif isinstance(value, bool | int | float | str):
            flat[prefix + key] = value
        else:
            flat[prefix + key] = str(value)  # lists, None, empty mappings: HParams takes only scalars
    return flat


class TeeLog:
    """A CsvLog whose rows also go to TensorBoard as `section/column` at the row's step."""

    def __init__(
        self, csv_log: CsvLog, tensorboard: TensorBoardLog | None, section: str, skip: tuple[str, ...] = ()
    ) -> None:
        self.csv = csv_log
        self.tensorboard = tensorboard
        self.section = section
        self.skip = skip

    def write(self, row: dict[str, Any]) -> None:
        self.csv.write(row)
        if self.tensorboard is not None:
            self.tensorboard.scalars(self.section, row, self.skip)

    def close(self) -> None:
        self.csv.close()


class ActorsLog:
    """actors.csv, and in TensorBoard `actors/<column>` for the totals and `actors/<i>/<column>` for
    actor i (its steps/s, weight lag and restarts)."""

    def __init__(self, csv_log: CsvLog, tensorboard: TensorBoardLog | None) -> None:
        self.csv, self.tensorboard = csv_log, tensorboard

    def write(self, row: dict[str, Any]) -> None:
        self.csv.write(row)
        if self.tensorboard is not None:
            total = row["actor"] < 0
            section = "actors" if total else f"actors/{row['actor']}"
            skip = ("actor",) if total else ("actor", "updates_per_s", "replay_ratio")
            self.tensorboard.scalars(section, row, skip)

    def close(self) -> None:
        self.csv.close()
