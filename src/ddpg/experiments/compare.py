"""Comparing settings across seeds: one implementation for `ddpg sweep` and `ddpg plot --group-by`.

Runs are grouped by the values of some config keys; within a group each seed is one sample. For each
group the evaluation curve's mean and a 95% bootstrap confidence interval of that mean are computed at
every evaluation step, and so are the final evaluation and the area under the evaluation curve. The
bootstrap resamples seeds (not episodes), so the interval says how sure we are of the setting's mean
over seeds, which is what a ranking of settings needs.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddpg.config import load_yaml, nest
from ddpg.config.parse import canonical_path
from ddpg.run.logs import LogError, read_csv
from ddpg.run.plots import new_figure, save_figure

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
FEW_SEEDS = 5  # below this, a summary says the confidence interval is wide (Agarwal et al. 2021)


@dataclass(frozen=True)
class RunRecord:
    """What a comparison needs from one run directory."""

    path: Path
    config: dict[str, Any]  # nested by section, whether config.yaml was written nested or flat
    eval_steps: np.ndarray
    eval_returns: np.ndarray
    summary: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.summary is not None and len(self.eval_steps) > 0

    @property
    def final_eval(self) -> float:
        return float(self.eval_returns[-1]) if len(self.eval_returns) else math.nan

    @property
    def best_eval(self) -> float:
        return float(self.eval_returns.max()) if len(self.eval_returns) else math.nan

    @property
    def eval_auc(self) -> float:
        return eval_auc(self.eval_steps, self.eval_returns)

    @property
    def steps_per_second(self) -> float:
        return float((self.summary or {}).get("train_steps_per_second", math.nan))


def eval_auc(steps: np.ndarray, returns: np.ndarray) -> float:
    """Area under the evaluation curve divided by the steps it spans: the curve's time-average.

    In return units, so runs of different lengths compare; a setting that learns early scores higher
    than one that reaches the same final return late, and a collapse late in training costs it.
    """
    if len(steps) == 0:
        return math.nan
    if len(steps) == 1:
        return float(returns[0])
    area = np.sum((returns[1:] + returns[:-1]) * np.diff(steps)) / 2
    return float(area / (steps[-1] - steps[0]))


def load_run(path: Path) -> RunRecord:
    """Read config.yaml, eval.csv and (when the run finished) summary.json of a run directory."""
    config = nest(load_yaml(path / "config.yaml"))  # a damaged file is a one-line ConfigError
    evals = read_csv(path / "eval.csv", ("step", "mean_return")) if (path / "eval.csv").is_file() else {}
    summary_file = path / "summary.json"
    summary = None
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise LogError(f"cannot read {summary_file}: {type(e).__name__}") from None
        if not isinstance(summary, dict):
            raise LogError(f"{summary_file} is not a run summary (a JSON object)")
    return RunRecord(
        path,
        config,
        np.asarray(evals.get("step", []), dtype=float),
        np.asarray(evals.get("mean_return", []), dtype=float),
        summary,
    )


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories among `paths`; a directory that is not a run stands for the runs inside it
    (so a sweep's directory, or its `runs/`, can be given as one path)."""
    found: list[Path] = []
    for path in paths:
        if (path / "config.yaml").is_file() and (path / "eval.csv").is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(
                sorted(p.parent for p in path.rglob("eval.csv") if (p.parent / "config.yaml").is_file())
            )
    return found


class UnknownKeyError(KeyError):
    """A group-by key that is not in a run's config."""


_NO_DEFAULT: Any = object()


def config_value(config: dict[str, Any], key: str, default: Any = _NO_DEFAULT) -> Any:
    """The value of a key in a run's config mapping (nested, as `load_run` reads it): a flat key, dotted
    for nested fields (`tau`, `noise.sigma`), or a section's (`optimisation.tau`)."""
    node: Any = config
    for part in canonical_path(key.split(".")):
        if not isinstance(node, dict) or part not in node:
            if default is not _NO_DEFAULT:
                return default
            raise UnknownKeyError(key)
        node = node[part]
    return node


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def setting_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "all runs"


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and the bounds of its bootstrap confidence interval."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class SettingStats:
    """One setting (a combination of group-by values) over its seeds, best first in a ranking."""

    values: dict[str, Any]
    runs: list[RunRecord]
    steps: np.ndarray
    curve: np.ndarray
    curve_low: np.ndarray
    curve_high: np.ndarray
    final: Interval
    auc: Interval
    best: float  # mean over seeds of each seed's best evaluation
    final_std: float  # spread of the final evaluation across seeds

    @property
    def label(self) -> str:
        return setting_label(self.values)


def bootstrap_mean_ci(
    samples: np.ndarray, rng: np.random.Generator, n_boot: int = BOOTSTRAP_SAMPLES, level: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and the percentile bootstrap interval of that mean (resampling rows)."""
    samples = np.asarray(samples, dtype=float)
    mean = samples.mean(axis=0)
    n = samples.shape[0]
    if n == 1:
        return mean, mean.copy(), mean.copy()
    means = samples[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return mean, low, high


def _common_curve(runs: list[RunRecord]) -> tuple[np.ndarray, np.ndarray]:
    """All runs' eval curves on one step grid: the steps they share, else the first run's steps inside
    the range every run covers (linear interpolation)."""
    shared = set(runs[0].eval_steps.tolist())
    for run in runs[1:]:
        shared &= set(run.eval_steps.tolist())
    if shared:
        steps = np.asarray(sorted(shared))
    else:
        lo = max(r.eval_steps[0] for r in runs)
        hi = min(r.eval_steps[-1] for r in runs)
        steps = runs[0].eval_steps[(runs[0].eval_steps >= lo) & (runs[0].eval_steps <= hi)]
        if len(steps) == 0:
            steps = np.asarray([hi])
    curves = np.stack([np.interp(steps, r.eval_steps, r.eval_returns) for r in runs])
    return steps, curves


def group_runs(runs: list[RunRecord], keys: list[str], seed: int = 0) -> list[SettingStats]:
    """Group finished runs by the values of `keys` and rank the groups by mean final evaluation."""
    groups: dict[str, tuple[dict[str, Any], list[RunRecord]]] = {}
    for run in runs:
        if not run.finished:
            continue
        values = {k: config_value(run.config, k) for k in keys}
        groups.setdefault(json.dumps(values, sort_keys=True, default=str), (values, []))[1].append(run)
    stats = []
    for key, (values, members) in groups.items():
        # One generator per setting, seeded by its values: a setting's interval does not depend on which
        # other settings are compared with it.
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        steps, curves = _common_curve(members)
        curve, curve_low, curve_high = bootstrap_mean_ci(curves, rng)
        finals = np.asarray([r.final_eval for r in members])
        aucs = np.asarray([r.eval_auc for r in members])
        stats.append(
            SettingStats(
                values=values,
                runs=members,
                steps=steps,
                curve=curve,
                curve_low=curve_low,
                curve_high=curve_high,
                final=Interval(*(float(x) for x in bootstrap_mean_ci(finals, rng))),
                auc=Interval(*(float(x) for x in bootstrap_mean_ci(aucs, rng))),
                best=float(np.mean([r.best_eval for r in members])),
                final_std=float(finals.std()),
            )
        )
    return sorted(stats, key=lambda s: -s.final.mean)


# ---------------------------------------------------------------------------------------------------
# Outputs


def comparison_figure(stats: list[SettingStats], out: Path, title: str = "") -> Path:
    """Left: each setting's mean eval curve with its 95% CI band. Right: final evaluation per seed,
    settings in ranking order, with the mean and its CI."""
    fig, (curves, finals) = new_figure(
        nrows=1, ncols=2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]}, squeeze=True
    )
    for i, s in enumerate(stats):
        color = f"C{i % 10}"
        curves.plot(s.steps, s.curve, color=color, lw=1.6, label=f"{s.label} (n={len(s.runs)})")
        curves.fill_between(s.steps, s.curve_low, s.curve_high, color=color, alpha=0.18, lw=0)
        y = len(stats) - 1 - i
        seeds = [r.final_eval for r in s.runs]
        finals.scatter(seeds, np.full(len(seeds), y), color=color, s=14, alpha=0.6, zorder=2)
        finals.errorbar(
            s.final.mean,
            y,
            xerr=[[s.final.mean - s.final.low], [s.final.high - s.final.mean]],
            fmt="D",
            color="k",
            ms=5,
            capsize=3,
            zorder=3,
        )
    curves.set_xlabel("environment steps")
    curves.set_ylabel("evaluation return (mean over seeds, 95% CI)")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7, loc="lower right")
    finals.set_yticks(range(len(stats)), [s.label for s in reversed(stats)], fontsize=7)
    finals.set_xlabel("final evaluation return (dots: seeds; ◆: mean, 95% CI)")
    finals.grid(alpha=0.3, axis="x")
    fig.suptitle(title or f"{len(stats)} settings", fontsize=10)
    return save_figure(fig, out)


def _interval(i: Interval) -> str:
    return f"{i.mean:.1f} [{i.low:.1f}, {i.high:.1f}]"


def summary_markdown(
    stats: list[SettingStats], title: str = "Comparison", failures: Sequence[str] = ()
) -> str:
    """A ranking table: final evaluation and area under the eval curve with 95% bootstrap CIs."""
    lines = [
        f"# {title}",
        "",
        "Settings ranked by mean final evaluation return over seeds. Brackets: 95% bootstrap confidence",
        "interval of the mean (seeds resampled). AUC: area under the evaluation curve divided by the steps",
        "it spans (the curve's average). Best: mean over seeds of each seed's best evaluation; a large gap",
        "between best and final means runs that learned and then fell apart. Std: spread of the final",
        "evaluation across seeds.",
        "",
        "| rank | setting | seeds | final eval | AUC | best | std |",
        "|---:|---|---:|---|---|---:|---:|",
    ]
    for rank, s in enumerate(stats, 1):
        lines.append(
            f"| {rank} | {s.label} | {len(s.runs)} | {_interval(s.final)} | {_interval(s.auc)} "
            f"| {s.best:.1f} | {s.final_std:.1f} |"
        )
    few = [s.label for s in stats if len(s.runs) < FEW_SEEDS]
    if few:
        lines += [
            "",
            f"Fewer than {FEW_SEEDS} seeds ({', '.join(few)}): a bootstrap interval over so few is wide and "
            "unreliable; run more seeds before trusting the ranking.",
        ]
    if failures:
        lines += ["", "## Failed trials", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"
