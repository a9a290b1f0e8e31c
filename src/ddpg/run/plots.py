"""Figures from run directories: returns with the evaluation curve, TD error and actor loss.

Figures are drawn on a `matplotlib.figure.Figure` of their own with the Agg canvas, never through
pyplot: the library leaves matplotlib's backend (a notebook's inline one) and pyplot's figures alone.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddpg.files import atomic_file
from ddpg.run.logs import read_csv

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _smooth(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over the last `window` values (fewer at the start), aligned with the input."""
    v = np.asarray(values, dtype=float)
    sums = np.cumsum(np.concatenate([[0.0], v]))
    n = np.arange(1, len(v) + 1)
    lo = np.maximum(n - window, 0)
    return (sums[n] - sums[lo]) / (n - lo)


def new_figure(**subplots: Any) -> tuple[Figure, Any]:
    """A figure on the Agg canvas and its axes (`Figure.subplots`' arguments), outside pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figsize = subplots.pop("figsize")
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


# Matplotlib's text layout is not thread-safe: agents learning in threads of one process (the seeds of a
# `ddpg tune` trial) draw their figures one at a time.
_DRAWING = threading.Lock()


def training_figure(run_dirs: Sequence[Path | str], out: Path | str) -> Path:
    """Seed 003's figure (`draw_training`) written to `out` as a PNG."""
    with _DRAWING:
        return save_figure(draw_training(run_dirs), Path(out))


def draw_training(paths: Sequence[Path | str]) -> Figure:
    """Seed 003's figure: returns (episodes and evaluations), TD error and actor loss against steps."""
    run_dirs = [Path(r) for r in paths]
    logs = [_logs(run) for run in run_dirs]  # every log read (or refused) before a figure exists
    fig, axes = new_figure(nrows=3, ncols=1, figsize=(9, 9), sharex=True)
    for i, (run, (metrics, updates, evals)) in enumerate(zip(run_dirs, logs, strict=True)):
        color = f"C{i}"
        label = run.name if len(run_dirs) > 1 else None
        if metrics.get("step"):
            axes[0].plot(metrics["step"], metrics["return"], color=color, alpha=0.25, lw=0.8)
            axes[0].plot(
                metrics["step"],
                _smooth(metrics["return"], 10),
                color=color,
                lw=1.2,
                label=f"{label} episodes" if label else "episode return (smoothed)",
            )
        if evals.get("step"):
            mean, std = np.asarray(evals["mean_return"]), np.asarray(evals["std_return"])
            axes[0].plot(
                evals["step"],
                mean,
                "o-",
                color=color,
                ms=3,
                lw=1.5,
                mec="k",
                mew=0.4,
                label=f"{label} eval" if label else "evaluation return",
            )
            axes[0].fill_between(evals["step"], mean - std, mean + std, color=color, alpha=0.15)
        if updates.get("step"):
            axes[1].plot(updates["step"], updates["td_error"], color=color, lw=1, label=label)
            axes[2].plot(updates["step"], updates["actor_loss"], color=color, lw=1, label=label)
    axes[0].set_ylabel("return")
    axes[1].set_ylabel("mean |TD error|")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("actor loss  −Q(s, μ(s))")
    axes[2].set_xlabel("environment steps")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="lower right", fontsize=8)
    if len(run_dirs) > 1:
        axes[1].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    title = run_dirs[0].name if len(run_dirs) == 1 else f"{len(run_dirs)} runs"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


Log = dict[str, list[float]]


def _logs(run: Path) -> tuple[Log, Log, Log]:
    """metrics.csv (required), updates.csv and eval.csv (optional) of `run`."""
    return (
        read_csv(run / "metrics.csv", ("step", "return")),
        _optional_log(run, "updates.csv", ("step", "td_error", "actor_loss"), "TD error and actor loss"),
        _optional_log(run, "eval.csv", ("step", "mean_return", "std_return"), "evaluations"),
    )


def _optional_log(run: Path, name: str, columns: tuple[str, ...], what: str) -> Log:
    """A log the figure can do without (a run killed early, or a copy of part of one): missing, it
    is a warning and its panel stays empty; present, it must be readable."""
    if not (run / name).is_file():
        warnings.warn(f"{run} has no {name}; its {what} are not plotted", stacklevel=4)
        return {}
    return read_csv(run / name, columns)


def save_figure(fig: Figure, out: Path) -> Path:
    """Write a PNG under a temporary name and rename it into place: a reader never sees half a file."""
    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return out
