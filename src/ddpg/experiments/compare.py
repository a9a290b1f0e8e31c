"""Comparing settings across seeds: one implementation for `ddpg sweep` and `ddpg plot --group-by`.

Runs are grouped by the values of some config keys; within a group each seed is one sample. For each
group the interquartile mean (IQM) over seeds of the final evaluation, of the area under the evaluation
curve and of the curve at every evaluation step is computed with rliable's 95% stratified bootstrap
confidence interval (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical
Precipice"), and a performance profile compares the groups' final evaluations. The bootstrap resamples
seeds (not episodes), so an interval says how sure we are of the setting's IQM over seeds, which is what
a ranking of settings needs; the IQM, the mean of the middle half of the seeds, is not moved by one seed
that failed or got lucky as the mean is, yet uses more of the seeds than the median.

`iqm_intervals` is the one place these statistics are computed: sweep reports, `ddpg plot --group-by`
and bench/algos.py all call it.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddpg.config import load_yaml, nest
from ddpg.config.parse import canonical_path
from ddpg.run.logs import LogError, read_csv
from ddpg.run.plots import new_figure, save_figure

# Resamples of an interval: its bounds came within 3% of the interval's width of 50 000 resamples'
# (rliable's default), against up to 14% with 2000, on 5 to 20 seeds of normal scores.
BOOTSTRAP_SAMPLES = 10_000
PROFILE_SAMPLES = 2000  # rliable's default for a performance profile
CONFIDENCE = 0.95
FEW_SEEDS = 5  # below this, a summary says the confidence interval is wide (Agarwal et al. 2021)
PROFILE_POINTS = 101  # thresholds of a performance profile, spanning the lowest to the highest score


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
    """An interquartile mean over seeds and the bounds of its stratified bootstrap confidence interval."""

    iqm: float
    low: float
    high: float


@dataclass(frozen=True)
class SettingStats:
    """One setting (a combination of group-by values) over its seeds, best first in a ranking."""

    values: dict[str, Any]
    runs: list[RunRecord]
    steps: np.ndarray
    curve: np.ndarray  # IQM over seeds at each step, and its CI
    curve_low: np.ndarray
    curve_high: np.ndarray
    final: Interval
    auc: Interval
    final_mean: float  # plain mean over seeds of the final evaluation
    best: float  # mean over seeds of each seed's best evaluation
    final_std: float  # spread of the final evaluation across seeds

    @property
    def label(self) -> str:
        return setting_label(self.values)


@contextmanager
def _seeded_numpy(seed: int | Sequence[int]) -> Iterator[None]:
    """rliable's bootstrap draws its resamples from numpy's global generator (its `random_state` is not
    used for them): seed that generator for one computation, then give the caller's state back, so a
    report is reproducible and no other code's random stream moves."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _column_iqm(scores: np.ndarray) -> np.ndarray:
    """rliable's `metrics.aggregate_iqm` (scipy's `trim_mean` cutting a quarter at each end) of each
    column of a seeds × 1 × columns array, in numpy: scipy's checks of its arguments took 90% of a
    bootstrap's time, called once per resample."""
    ranked = np.sort(scores.reshape(len(scores), -1), axis=0)
    cut = int(0.25 * len(ranked))
    return np.asarray(ranked[cut : len(ranked) - cut].mean(axis=0))


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean of one value per seed (rliable's `aggregate_iqm`)."""
    return float(_column_iqm(np.asarray(values, dtype=float).reshape(-1, 1))[0])


def iqm_intervals(
    scores: np.ndarray, seed: int | Sequence[int] = 0, level: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The IQM over seeds (axis 0) of each column of `scores` and its stratified bootstrap interval.

    `scores` is seeds × quantities (a 1-D array is one quantity). To rliable the seeds are the runs of
    one task, and each quantity's seeds are resampled on their own. The interval is the percentile
    interval of BOOTSTRAP_SAMPLES resamples, drawn from a generator seeded by `seed`.
    """
    from rliable import library

    scores = np.asarray(scores, dtype=float)
    shape = scores.shape[1:]
    if len(scores) == 1:  # one seed: nothing to resample
        return scores[0].copy(), scores[0].copy(), scores[0].copy()
    with _seeded_numpy(seed):
        points, intervals = library.get_interval_estimates(
            {"scores": scores.reshape(len(scores), 1, -1)},
            _column_iqm,
            reps=BOOTSTRAP_SAMPLES,
            confidence_interval_size=level,
        )
    low, high = intervals["scores"]
    return points["scores"].reshape(shape), low.reshape(shape), high.reshape(shape)


def iqm_interval(values: Sequence[float], seed: int | Sequence[int] = 0) -> Interval:
    """`iqm_intervals` of one quantity: one value per seed."""
    point, low, high = iqm_intervals(np.asarray(values, dtype=float), seed)
    return Interval(float(point), float(low), float(high))


def few_seeds_note(labels: Sequence[str]) -> str:
    """The warning under a table whose rows (named by `labels`) have fewer than FEW_SEEDS seeds."""
    return (
        f"Fewer than {FEW_SEEDS} seeds ({', '.join(labels)}): a bootstrap interval over so few is wide and "
        "unreliable; run more seeds before trusting a ranking or a claim made from it."
    )


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
    """Group finished runs by the values of `keys` and rank the groups by the IQM of the final evaluation."""
    groups: dict[str, tuple[dict[str, Any], list[RunRecord]]] = {}
    for run in runs:
        if not run.finished:
            continue
        values = {k: config_value(run.config, k) for k in keys}
        groups.setdefault(json.dumps(values, sort_keys=True, default=str), (values, []))[1].append(run)
    stats = []
    for key, (values, members) in groups.items():
        steps, curves = _common_curve(members)
        finals = np.asarray([r.final_eval for r in members])
        aucs = np.asarray([r.eval_auc for r in members])
        # One bootstrap per setting, seeded by its values: a setting's intervals do not depend on which
        # other settings are compared with it.
        point, low, high = iqm_intervals(
            np.column_stack([finals, aucs, curves]), [seed, zlib.crc32(key.encode())]
        )
        stats.append(
            SettingStats(
                values=values,
                runs=members,
                steps=steps,
                curve=point[2:],
                curve_low=low[2:],
                curve_high=high[2:],
                final=Interval(float(point[0]), float(low[0]), float(high[0])),
                auc=Interval(float(point[1]), float(low[1]), float(high[1])),
                final_mean=float(finals.mean()),
                best=float(np.mean([r.best_eval for r in members])),
                final_std=float(finals.std()),
            )
        )
    return sorted(stats, key=lambda s: -s.final.iqm)


@dataclass(frozen=True)
class Profile:
    """A setting's performance profile: the fraction of its seeds whose final evaluation exceeds each
    threshold, with the pointwise stratified bootstrap interval."""

    fraction: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's default profile (`library.score_distributions`: the fraction of all runs scoring above
    each threshold) for every threshold in one comparison instead of one Python call each."""
    return np.mean(scores.reshape(-1, 1) > taus, axis=0)


def performance_profiles(stats: list[SettingStats], seed: int = 0) -> tuple[np.ndarray, dict[str, Profile]]:
    """The thresholds (lowest to highest final evaluation of any seed) and each setting's profile."""
    from rliable import library

    scores = {s.label: np.asarray([[r.final_eval] for r in s.runs]) for s in stats}
    every = np.concatenate(list(scores.values())).ravel()
    taus = np.linspace(every.min(), every.max(), PROFILE_POINTS)
    with _seeded_numpy(seed):
        profiles, intervals = library.create_performance_profile(
            scores, taus, custom_profile_func=_score_distribution, reps=PROFILE_SAMPLES
        )
    return taus, {k: Profile(profiles[k], *intervals[k]) for k in scores}


# ---------------------------------------------------------------------------------------------------
# Outputs


def comparison_figure(stats: list[SettingStats], out: Path, title: str = "") -> Path:
    """Left: each setting's IQM eval curve with its 95% CI band. Middle: final evaluation per seed,
    settings in ranking order, with the IQM and its CI. Right: the performance profiles of the final
    evaluations (rliable's), each with its 95% CI band."""
    from rliable import plot_utils

    fig, (curves, finals, profile) = new_figure(
        nrows=1, ncols=3, figsize=(18, 5.5), gridspec_kw={"width_ratios": [3, 2, 2]}, squeeze=True
    )
    colors = {s.label: f"C{i % 10}" for i, s in enumerate(stats)}
    for i, s in enumerate(stats):
        color = colors[s.label]
        curves.plot(s.steps, s.curve, color=color, lw=1.6, label=f"{s.label} (n={len(s.runs)})")
        curves.fill_between(s.steps, s.curve_low, s.curve_high, color=color, alpha=0.18, lw=0)
        y = len(stats) - 1 - i
        seeds = [r.final_eval for r in s.runs]
        finals.scatter(seeds, np.full(len(seeds), y), color=color, s=14, alpha=0.6, zorder=2)
        finals.errorbar(
            s.final.iqm,
            y,
            xerr=[[s.final.iqm - s.final.low], [s.final.high - s.final.iqm]],
            fmt="D",
            color="k",
            ms=5,
            capsize=3,
            zorder=3,
        )
    curves.set_xlabel("environment steps")
    curves.set_ylabel("evaluation return (IQM over seeds, 95% CI)")
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7, loc="lower right")
    finals.set_yticks(range(len(stats)), [s.label for s in reversed(stats)], fontsize=7)
    finals.set_xlabel("final evaluation return (dots: seeds; ◆: IQM, 95% CI)")
    finals.grid(alpha=0.3, axis="x")
    taus, profiles = performance_profiles(stats)
    plot_utils.plot_performance_profiles(
        {k: p.fraction for k, p in profiles.items()},
        taus,
        performance_profile_cis={k: (p.low, p.high) for k, p in profiles.items()},
        ax=profile,
        colors=colors,
        xlabel=r"final evaluation return $\tau$",
        ylabel=r"fraction of seeds with final return $> \tau$",
        labelsize="medium",
        ticklabelsize="small",
        wrect=4,
        hrect=4,
    )
    fig.suptitle(title or f"{len(stats)} settings", fontsize=10)
    return save_figure(fig, out)


def format_interval(i: Interval) -> str:
    return f"{i.iqm:.1f} [{i.low:.1f}, {i.high:.1f}]"


def summary_markdown(
    stats: list[SettingStats], title: str = "Comparison", failures: Sequence[str] = ()
) -> str:
    """A ranking table: final evaluation and area under the eval curve, IQMs with 95% CIs."""
    lines = [
        f"# {title}",
        "",
        "Settings ranked by the interquartile mean (IQM: the mean of the middle half) over seeds of the",
        "final evaluation return. Brackets: 95% stratified bootstrap confidence interval of the IQM (seeds",
        "resampled, rliable). Mean: the plain mean over seeds. AUC: area under the evaluation curve divided",
        "by the steps it spans (the curve's average). Best: mean over seeds of each seed's best evaluation;",
        "a large gap between best and final means runs that learned and then fell apart. Std: spread of the",
        "final evaluation across seeds.",
        "",
        "| rank | setting | seeds | final eval, IQM | mean | AUC, IQM | best | std |",
        "|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for rank, s in enumerate(stats, 1):
        lines.append(
            f"| {rank} | {s.label} | {len(s.runs)} | {format_interval(s.final)} | {s.final_mean:.1f} "
            f"| {format_interval(s.auc)} | {s.best:.1f} | {s.final_std:.1f} |"
        )
    few = [s.label for s in stats if len(s.runs) < FEW_SEEDS]
    if few:
        lines += ["", few_seeds_note(few)]
    if failures:
        lines += ["", "## Failed trials", ""] + [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"
