"""Grids of settings × seeds as Ray Tune trials, each an ordinary run directory.

A sweep directory holds:
    sweep.yaml      the spec (grid, seeds, preset, overrides): what `--resume` re-reads
    runs/NAME/      one run directory per trial (`DDPG(...).learn(run_dir=...)`), the source of truth
    ray/            Ray Tune's own experiment storage
    results.csv     one row per trial; summary.md and comparison.png: per setting, IQM and 95% CI

Without an address an embedded local Ray is started with this machine's cores; with one, the sweep joins
that cluster (every node then needs `ddpg` installed and the sweep directory on a shared filesystem).
Without Ray installed, trials run in a local process pool instead.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from ddpg.config import Config, ConfigError, EnvironmentConfig, parse_override, resolve
from ddpg.config.parse import yaml_reason
from ddpg.config.sections import shown
from ddpg.experiments import backends, compare
from ddpg.experiments.backends import ray_available as ray_available  # the CLI checks it first
from ddpg.files import atomic_file, atomic_write
from ddpg.run.resources import usable_cpus

SPEC_FILE = "sweep.yaml"
# The numbers of a finished trial: fields of TrialResult, columns of results.csv.
METRIC_COLUMNS = ("final_eval", "eval_auc", "best_eval", "steps_per_s", "wall_time_s")
RESULT_COLUMNS = ("trial", "seed", "status", *METRIC_COLUMNS)


class SweepError(ValueError):
    """A sweep cannot be planned or resumed; the message says why."""


# ---------------------------------------------------------------------------------------------------
# The spec and the trials it expands to


@dataclass(frozen=True, kw_only=True)
class ExperimentSpec:
    """What a sweep and a tune share: the runs' seeds, what they train (env, preset, overrides, steps)
    and the CPUs of a trial. The file `save` writes is what a resume reads (`load`)."""

    KIND: ClassVar[str]  # "sweep" or "tune", in the errors
    ERROR: ClassVar[type[SweepError]]  # what `load` raises
    seeds: int = 3
    env: str | None = None
    preset: str | None = None
    steps: int | None = None
    overrides: list[str] = field(default_factory=list)
    cpus_per_trial: float = 1.0

    def base_config(self) -> Config:
        """The config every run starts from, before its own grid point or proposed values."""
        return resolve(env_id=self.env, preset=self.preset, overrides=self.overrides, total_steps=self.steps)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        atomic_write(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> Self:
        data = read_spec(path, cls.KIND)
        try:
            return cls(
                **cls._own_fields(data),
                seeds=int(data["seeds"]),
                env=data.get("env"),
                preset=data.get("preset"),
                steps=data.get("steps"),
                overrides=[str(s) for s in data.get("overrides") or []],
                cpus_per_trial=float(data.get("cpus_per_trial", 1.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise cls.ERROR(f"{path} is not a {cls.KIND} spec ({e})") from None

    @staticmethod
    def _own_fields(data: dict[str, Any]) -> dict[str, Any]:
        """The subclass's own fields from its file's mapping (a KeyError, TypeError or ValueError if bad)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SweepSpec(ExperimentSpec):
    """What a sweep runs. Grid values are kept as the text the user typed, parsed like `--set`."""

    KIND, ERROR = "sweep", SweepError
    grid: list[tuple[str, list[str]]]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "grid": {key: list(values) for key, values in self.grid}}

    @staticmethod
    def _own_fields(data: dict[str, Any]) -> dict[str, Any]:
        return {"grid": [(str(k), [str(v) for v in values]) for k, values in data["grid"].items()]}


def read_spec(path: Path, what: str) -> dict[str, Any]:
    """The mapping in a sweep's (or tune's) spec file; `what` names the kind in the errors."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError:
        raise SweepError(f"{path.parent} is not a {what} directory (no {path.name})") from None
    except yaml.YAMLError as e:
        raise SweepError(f"{path} is not valid YAML ({yaml_reason(e)})") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path} is not a {what} spec")
    return data


def split_values(text: str) -> list[str]:
    """Split `v1,v2,...` at the commas outside brackets and quotes, so `[64,64],[32,32]` is two values."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def keyed_options(
    texts: list[str], option: str, form: str, reserved: dict[str, str]
) -> list[tuple[str, str]]:
    """`OPTION KEY=...` texts (`--grid`, `--space`) → [(key, the text after "=")], each key once and none
    the experiment sets itself (`reserved`: key → what to use instead); the errors name the option."""
    pairs: list[tuple[str, str]] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"{option} expects {form}, got {shown(text)}")
        where = f"{option} {shown(key, quote=False)}"
        if key in reserved:
            raise ConfigError(f"{where}: {reserved[key]}")
        if key in (k for k, _ in pairs):
            raise ConfigError(f"{where} is given twice")
        pairs.append((key, raw))
    return pairs


def parse_grid(texts: list[str]) -> list[tuple[str, list[str]]]:
    """`--grid key=v1,v2` options → [(key, [v1, v2])], values checked to be YAML like `--set`'s."""
    reserved = {"seed": "use --seeds N to repeat every setting over N seeds"}
    grid: list[tuple[str, list[str]]] = []
    for key, raw in keyed_options(texts, "--grid", "key=v1,v2,...", reserved):
        values = split_values(raw)
        if any(not v for v in values):
            raise ConfigError(f"--grid {key}: empty value in {shown(raw)}")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {key}: a value is repeated in {shown(raw)}")
        for value in values:
            parse_override(f"{key}={value}")  # raises a ConfigError naming the key for bad YAML
        grid.append((key, values))
    return grid


@dataclass(frozen=True)
class Trial:
    """One grid point with one seed."""

    index: int
    name: str
    params: dict[str, Any]  # grid key → parsed value
    seed: int
    config: Config


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", text).strip("-")[:60]


def plan(spec: SweepSpec) -> list[Trial]:
    """Every grid point × seed as a validated Config; the first bad point raises a ConfigError."""
    base = spec.base_config()
    points: list[list[tuple[str, str]]] = [[]]
    for key, values in spec.grid:
        points = [[*p, (key, v)] for p in points for v in values]
    trials: list[Trial] = []
    for point in points:
        params = {key: parse_override(f"{key}={raw}")[1] for key, raw in point}
        label = ", ".join(f"{k}={raw}" for k, raw in point)
        for i in range(spec.seeds):
            seed = base.loop.seed + i
            # Trials never draw a progress bar: nobody sees a worker's terminal.
            overrides = [
                *spec.overrides,
                *(f"{k}={raw}" for k, raw in point),
                f"seed={seed}",
                "progress=false",
            ]
            try:
                config = resolve(
                    env_id=spec.env, preset=spec.preset, overrides=overrides, total_steps=spec.steps
                )
            except ConfigError as e:
                raise ConfigError(f"grid point {label}: {e}") from None
            index = len(trials)
            name = _slug(f"{index:03d}_" + "_".join(f"{k}={raw}" for k, raw in point) + f"_s{seed}")
            trials.append(Trial(index, name, params, seed, config))
    return trials


def check_envs(spec: SweepSpec, trials: list[Trial]) -> None:
    """Make each environment the sweep uses once, so an unknown id fails before any trial starts.

    Only the sweep-wide env kwargs are used here: a grid over `env.*` may hold values that fail at
    run time, and those fail their own trials, not the sweep.
    """
    from ddpg.envs import make_env

    env = spec.base_config().environment
    for env_id in sorted({t.config.environment.id for t in trials}):
        make_env(env_id, env.kwargs, max_episode_steps=env.max_episode_steps).close()


# ---------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    run_dir: Path
    status: str  # ok | error
    error: str = ""
    final_eval: float = math.nan
    eval_auc: float = math.nan
    best_eval: float = math.nan
    steps_per_s: float = math.nan
    wall_time_s: float = math.nan


def trial_result(trial: Trial, run_dir: Path, fallback_error: str = "") -> TrialResult:
    """A trial's outcome as its run directory records it."""
    if (run_dir / "summary.json").is_file():
        run = compare.load_run(run_dir)
        return TrialResult(
            trial,
            run_dir,
            "ok",
            final_eval=run.final_eval,
            eval_auc=run.eval_auc,
            best_eval=run.best_eval,
            steps_per_s=run.steps_per_second,
            wall_time_s=float((run.summary or {}).get("wall_time_s", math.nan)),
        )
    error_file = run_dir / "error.txt"
    if error_file.is_file():
        error = error_file.read_text().splitlines()[0]
    else:
        error = fallback_error or "did not finish"
    return TrialResult(trial, run_dir, "error", error=error)


@dataclass(frozen=True)
class SweepReport:
    directory: Path
    results: list[TrialResult]
    settings: list[compare.SettingStats]
    ran: int  # trials run by this call (the others were finished before a resume)
    backend: str

    @property
    def failed(self) -> list[TrialResult]:
        return [r for r in self.results if r.status != "ok"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return compare.format_value(value)


def write_reports(directory: Path, spec: SweepSpec, results: list[TrialResult]) -> list[compare.SettingStats]:
    """results.csv, summary.md and comparison.png, all recomputed from the run directories."""
    keys = [k for k, _ in spec.grid]
    columns = ["trial", *keys, *(c for c in RESULT_COLUMNS if c != "trial"), "error", "run_dir"]
    with atomic_file(directory / "results.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in results:
            row = {
                **r.trial.params,
                **{c: getattr(r, c) for c in METRIC_COLUMNS},
                "trial": r.trial.name,
                "seed": r.trial.seed,
                "status": r.status,
                "error": r.error,
                "run_dir": r.run_dir.relative_to(directory).as_posix(),
            }
            writer.writerow([_fmt(row[c]) for c in columns])
    runs = [compare.load_run(r.run_dir) for r in results if r.status == "ok"]
    settings = compare.group_runs(runs, keys)
    env = spec.env or (compare.config_value(runs[0].config, "env_id", "") if runs else "")
    title = f"Sweep {directory.name}: {env}, {spec.seeds} seeds per setting"
    failures = [f"{r.trial.name}: {r.error}" for r in results if r.status != "ok"]
    md = compare.summary_markdown(settings, title, failures)
    atomic_write(directory / "summary.md", md)
    if settings:
        compare.comparison_figure(settings, directory / "comparison.png", title)
    return settings


# ---------------------------------------------------------------------------------------------------
# Running a sweep


def default_directory(spec: SweepSpec) -> Path:
    env = spec.env or spec.preset or EnvironmentConfig.id
    keys = "-".join(k for k, _ in spec.grid)
    return Path("sweeps") / _slug(f"{env.split(':')[-1]}_{keys}_{datetime.now():%Y%m%d-%H%M%S}")


def prepare(spec: SweepSpec, directory: Path) -> list[Trial]:
    """Validate everything a new sweep needs, before anything is written."""
    trials = plan(spec)
    check_envs(spec, trials)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise SweepError(
            f"sweep directory {directory} already exists; use --resume {directory} or another --out"
        )
    return trials


def run_sweep(
    spec: SweepSpec,
    directory: Path,
    *,
    trials: list[Trial] | None = None,
    resume: bool = False,
    address: str | None = None,
    on_trial_done: Callable[[TrialResult, int, int], None] | None = None,
) -> SweepReport:
    """Run (or, with `resume`, finish) a sweep and write its reports.

    `trials` is `plan(spec)` when the caller has it already (`prepare` returns it). A resumed sweep
    re-runs only the trials whose run directory has no summary.json.
    """
    directory = Path(directory).absolute()
    trials = plan(spec) if trials is None else trials
    cpus = spec.cpus_per_trial
    if address is None and cpus > usable_cpus():
        # An embedded Ray would wait forever for a trial that cannot fit on this machine.
        raise SweepError(f"--cpus-per-trial {cpus:g} exceeds this machine's {usable_cpus()} CPUs")
    use_ray = backends.ray_available()
    if address is not None and not use_ray:
        raise SweepError("--address needs Ray: pip install 'ddpg[sweep]'")
    if not resume:
        directory.mkdir(parents=True, exist_ok=True)
        spec.save(directory / SPEC_FILE)
    runs_dir = directory / "runs"
    runs_dir.mkdir(exist_ok=True)
    pending = [t for t in trials if not (runs_dir / t.name / "summary.json").is_file()]
    errors: dict[str, str] = {}
    done = 0

    def finished(trial: Trial, error: str = "") -> None:
        nonlocal done
        done += 1
        errors[trial.name] = error
        if on_trial_done is not None:
            on_trial_done(trial_result(trial, runs_dir / trial.name, error), done, len(pending))

    backend = "none"
    if pending:
        jobs = [
            {"name": t.name, "config": t.config.to_dict(), "run_dir": str(runs_dir / t.name)} for t in pending
        ]
        by_name = {t.name: t for t in pending}
        if use_ray:
            backend = backends.run_with_ray(
                jobs, directory, address, cpus, lambda n, e: finished(by_name[n], e)
            )
        else:
            backend = backends.run_with_pool(jobs, cpus, lambda n, e: finished(by_name[n], e))
    results = [trial_result(t, runs_dir / t.name, errors.get(t.name, "")) for t in trials]
    settings = write_reports(directory, spec, results)
    return SweepReport(directory, results, settings, len(pending), backend)
