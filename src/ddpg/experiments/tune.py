"""Hyper-parameter search on Ray Tune: Optuna's TPE proposes, ASHA stops the laggards early.

A tune directory holds:
    tune.yaml               the spec (space, trials, seeds, preset, overrides): the same command resumes
    runs/trial_NNN/         one trial: params.yaml (its values), reported.txt (the steps it reported at)
                            and seed_<S>/, an ordinary run directory per seed
    ray/tune/               Ray Tune's experiment state, the searcher's included (`Tuner.restore`)
    summary.md              the trials ranked, with history.png and importance.png
    best.yaml               the best trial's config: `ddpg train --preset DIR/best.yaml`

A trial is one configuration trained with K seeds in lockstep, one thread per seed in the trial's
process. After each evaluation step that every seed has reached, the trial reports the IQM (the 25%
trimmed mean, rliable's `aggregate_iqm`) of the seeds' evaluation returns at that step: ASHA compares
trials at equal steps on that curve, and the objective TPE maximises is its last value, the IQM of the
final evaluations for a trial that ran to the end. Seeds trained one after another would show ASHA one
lucky seed early on; in lockstep every decision sees all K.

A killed tune continues with the same command: the trials that finished are kept, the searcher's state is
restored, and the trials that were in flight start again from scratch.
"""

from __future__ import annotations

import math
import queue
import re
import shutil
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ddpg.config import Config, ConfigError, apply_overrides, config_yaml, from_dict, parse_override
from ddpg.config.parse import yaml_reason
from ddpg.config.sections import shown
from ddpg.experiments import backends, compare
from ddpg.experiments.sweep import ExperimentSpec, SweepError, keyed_options, split_values
from ddpg.files import atomic_write
from ddpg.run.loop import passed
from ddpg.run.resources import usable_cpus

SPEC_FILE = "tune.yaml"
EXPERIMENT = "tune"  # Tune's experiment name under DIR/ray: fixed, so the same command finds it again
METRIC = "iqm"
REPORTED = "reported.txt"  # in a trial's directory: the steps it reported at, one a line
KINDS = ("loguniform", "uniform", "int", "choice")
# Keys the tune itself sets: the seeds, the length of a trial and the steps ASHA compares trials at.
RESERVED = {
    "seed": "use --seeds K",
    "total_steps": "use --steps S",
    "eval_every": "it sets the steps ASHA compares trials at; fix it with --set",
}


class TuneError(SweepError):
    """A tune cannot be planned or resumed; the message says why."""


# ---------------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class Distribution:
    """`KEY=kind(args)`: `loguniform(a,b)`, `uniform(a,b)`, `int(a,b)` (both ends included) or
    `choice(x,y,...)`, whose options are kept as typed and parsed like `--set` values."""

    key: str
    kind: str
    options: tuple[str, ...] = ()  # choice
    low: float = 0.0
    high: float = 0.0

    @property
    def text(self) -> str:
        args = ",".join(self.options) if self.kind == "choice" else f"{self.low:g},{self.high:g}"
        return f"{self.key}={self.kind}({args})"

    def domain(self) -> Any:
        """Ray Tune's domain. Choices are their text, parsed in the trial, so any YAML value (a list of
        layer sizes) is an option TPE can pick."""
        from ray import tune

        if self.kind == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.kind == "uniform":
            return tune.uniform(self.low, self.high)
        if self.kind == "int":
            return tune.randint(int(self.low), int(self.high) + 1)  # randint excludes its upper end
        return tune.choice(list(self.options))

    def optuna_distribution(self) -> Any:
        import optuna.distributions as d

        if self.kind == "choice":
            return d.CategoricalDistribution(self.options)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high))
        return d.FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def checked_values(self) -> list[Any]:
        """Values whose configs must all be valid: the ends, and a point inside a continuous range (so
        an integer field refuses uniform(16,256) by its own check)."""
        if self.kind == "choice":
            return list(self.options)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        # An uneven split, so that the point is no integer for integer bounds.
        if self.kind == "loguniform":
            inside = math.exp(math.log(self.low) + 0.382 * math.log(self.high / self.low))
        else:
            inside = self.low + 0.382 * (self.high - self.low)
        return [self.low, inside, self.high]


DISTRIBUTION = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$", re.DOTALL)


def parse_distribution(text: str) -> Distribution:
    """One `--space KEY=DIST`, checked for its syntax only (`check_space` checks it against the config)."""
    return parse_space([text])[0]


def parse_space(texts: list[str]) -> list[Distribution]:
    reserved = {key: f"the tune sets it ({instead})" for key, instead in RESERVED.items()}
    return [_distribution(key, raw) for key, raw in keyed_options(texts, "--space", "KEY=DIST", reserved)]


def _distribution(key: str, raw: str) -> Distribution:
    where = f"--space {shown(key, quote=False)}"
    match = DISTRIBUTION.match(raw)
    if match is None or match.group(1) not in KINDS:
        raise ConfigError(f"{where}: expected one of {', '.join(k + '(…)' for k in KINDS)}, got {shown(raw)}")
    kind, args = match.group(1), split_values(match.group(2))
    if any(not a for a in args):
        raise ConfigError(f"{where}: empty argument in {shown(raw)}")
    if kind == "choice":
        if len(args) < 2 or not _different(key, args):
            raise ConfigError(f"{where}: choice needs two or more different options, got {shown(raw)}")
        return Distribution(key, kind, options=tuple(args))
    if len(args) != 2:
        raise ConfigError(f"{where}: {kind} takes two bounds (low,high), got {shown(raw)}")
    try:
        low, high = (int(a) if kind == "int" else float(a) for a in args)
    except ValueError:
        number = "integers" if kind == "int" else "numbers"
        raise ConfigError(f"{where}: {kind}'s bounds must be {number}, got {shown(raw)}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{where}: {kind} needs finite bounds with low < high, got {shown(raw)}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform's bounds must be > 0, got {shown(raw)}")
    return Distribution(key, kind, low=float(low), high=float(high))


def _different(key: str, options: list[str]) -> bool:
    """Whether no two options are the same value (`[64,64]` and `[64, 64]` are one), or, while one is not
    valid YAML, the same text (`check_space` then says what is wrong with it)."""
    try:
        values = [(type(v), v) for v in (parse_override(f"{key}={o}")[1] for o in options)]
    except ConfigError:
        return len(set(options)) == len(options)
    return all(values[i] != values[j] for i in range(len(values)) for j in range(i))


def assignment(dist: Distribution, value: Any) -> str:
    """`key=value` as `--set` takes it; a choice's value is its text."""
    return f"{dist.key}={value if dist.kind == 'choice' else repr(value)}"


# ---------------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True, kw_only=True)
class TuneSpec(ExperimentSpec):
    """What a tune runs; the space is kept as the text the user typed."""

    KIND, ERROR = "tune", TuneError
    space: list[str]
    trials: int = 20

    @cached_property
    def distributions(self) -> list[Distribution]:
        return parse_space(self.space)  # once per spec: prepare, the tuner and the reports all read it

    def same_search(self, other: TuneSpec) -> bool:
        """Whether `other` asks for the same tune (CPUs per trial may change on a resume)."""
        return {**asdict(self), "cpus_per_trial": 0} == {**asdict(other), "cpus_per_trial": 0}

    @staticmethod
    def _own_fields(data: dict[str, Any]) -> dict[str, Any]:
        return {"space": [str(s) for s in data["space"]], "trials": int(data["trials"])}


def configure(base: dict[str, Any], assignments: list[str]) -> Config:
    """The base config (nested data) with `key=value` assignments applied, validated."""
    return from_dict(apply_overrides(base, assignments))


def check_space(spec: TuneSpec) -> Config:
    """Every key and bound of the space against the config: a Config is built at each bound (and inside a
    continuous range), so the sections' own checks speak, naming the field. Returns the base config."""
    base = spec.base_config()
    data = base.to_dict()
    for dist in spec.distributions:
        for value in dist.checked_values():
            try:
                configure(data, [assignment(dist, value)])
            except ConfigError as e:
                raise ConfigError(f"--space {dist.text}: {e}") from None
    return base


def eval_steps(config: Config) -> list[int]:
    """The steps a run of `config` evaluates at (what the trials report at)."""
    every, n_envs, total = config.logging.eval_every, config.environment.n_envs, config.loop.total_steps
    steps = [s for s in range(n_envs, total + 1, n_envs) if passed(s - n_envs, s, every)]
    return steps if steps and steps[-1] == total else [*steps, total]


def prepare(spec: TuneSpec, directory: Path) -> Config:
    """Validate a tune before anything is written: the space, the environment, and the directory (new,
    or one this same tune was started in)."""
    from ddpg.envs import make_env

    if not backends.ray_available():
        raise TuneError("ddpg tune needs Ray Tune and Optuna: pip install 'ddpg[tune]'")
    if spec.trials < 1 or spec.seeds < 1:
        raise TuneError("--trials and --seeds must be >= 1")
    if spec.cpus_per_trial > usable_cpus():
        raise TuneError(
            f"--cpus-per-trial {spec.cpus_per_trial:g} exceeds this machine's {usable_cpus()} CPUs"
        )
    base = check_space(spec)
    if base.loop.actors or any(d.key == "actors" for d in spec.distributions):
        # A trial is one Tune actor already; actors of its own would compete for the trial's CPUs.
        raise ConfigError("actors is not supported by ddpg tune: tune with actors: 0")
    if base.logging.eval_episodes < 1:
        raise TuneError("eval_episodes must be >= 1: the trials are compared by their evaluations")
    env = base.environment
    make_env(env.id, env.kwargs, max_episode_steps=env.max_episode_steps).close()
    if (directory / SPEC_FILE).is_file():
        if not TuneSpec.load(directory / SPEC_FILE).same_search(spec):
            raise TuneError(
                f"{directory} holds another tune ({SPEC_FILE} differs); run its own command to continue "
                "it, or choose another --out"
            )
    elif directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise TuneError(f"{directory} exists and is not a tune directory; choose another --out")
    return base


# ---------------------------------------------------------------------------------------------------
# A trial: K seeds in lockstep


class TrialFailed(RuntimeError):
    """A seed of the trial failed (its run directory's error.txt says how); Tune marks the trial failed."""


def train_trial(job: dict[str, Any], values: dict[str, Any], trial_dir: Path, report: Callable) -> None:
    """Train one configuration with every seed into `trial_dir/seed_<S>/`, calling `report(metrics)` each
    time all seeds have evaluated at a step, the last step's once the seeds have written their summaries.
    `report` may raise to stop the trial; the seeds then stop after their current step, with a checkpoint
    and summary, unless their process ends first (Tune ends the actor of a trial ASHA stops)."""
    if trial_dir.exists():
        shutil.rmtree(trial_dir)  # an attempt cut short by a kill: its logs are append-only, start over
    trial_dir.mkdir(parents=True)
    atomic_write(trial_dir / "params.yaml", yaml.safe_dump(values, sort_keys=False))
    dists = {d.key: d for d in parse_space(job["space"])}
    assignments = [assignment(dists[k], v) for k, v in values.items()]
    seeds = job["seeds"]
    events: queue.Queue[tuple[int, int | None, Any]] = queue.Queue()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_train_seed,
            args=(i, job, [*assignments, f"seed={s}"], trial_dir / f"seed_{s}", events, stop),
            daemon=True,
        )
        for i, s in enumerate(seeds)
    ]
    for t in threads:
        t.start()
    at_step: dict[int, dict[int, float]] = {}
    running, failure, last = len(seeds), "", None
    try:
        while running:
            i, step, value = events.get()
            if step is None:  # seed i ended; `value` is its error or ""
                running -= 1
                failure = failure or (f"seed {seeds[i]}: {value}" if value else "")
                if failure:
                    stop.set()
            elif not failure:
                at_step.setdefault(step, {})[i] = value
                if len(at_step[step]) == len(seeds):
                    last = {METRIC: compare.iqm(list(at_step.pop(step).values())), "step": step}
                    if step < job["total"]:
                        _report(trial_dir, last, report)
    finally:
        stop.set()
        for t in threads:
            t.join()
    if failure:
        raise TrialFailed(failure)
    if last is not None and last["step"] == job["total"]:
        # Reported once the seeds have written their summaries: Tune ends a trial at its last report.
        _report(trial_dir, last, report)


def _report(trial_dir: Path, metrics: dict[str, Any], report: Callable) -> None:
    """`report(metrics)`, after appending the step to REPORTED: seeds of a trial ASHA stops go on for a
    moment, and the reports say where it was stopped."""
    with (trial_dir / REPORTED).open("a") as f:
        f.write(f"{metrics['step']}\n")
    report(metrics)


def _train_seed(
    i: int,
    job: dict[str, Any],
    assignments: list[str],
    run_dir: Path,
    events: queue.Queue,
    stop: threading.Event,
) -> None:
    """One seed of a trial (in its own thread): each evaluation goes to `events` as (i, step, return),
    and the end as (i, None, error or "")."""
    from ddpg.run.agent import DDPG

    def on_event(event: Any) -> bool | None:
        if event.kind == "evaluation":
            events.put((i, event.step, event.evaluation.mean_return))
        return False if stop.is_set() else None

    try:
        config = configure(job["base"], assignments)
        if config.loop.threads == "auto":
            config = config.replace(threads=job["threads"])
        with DDPG(config.environment.id, config) as agent:
            agent.learn(run_dir=run_dir, callback=on_event)
        events.put((i, None, ""))
    except Exception as e:
        events.put((i, None, backends.record_failure(run_dir, e)))


def _tune_trainable(config: dict[str, Any]) -> None:
    from ray import tune

    job = config["job"]
    trial_dir = Path(job["runs"]) / tune.get_context().get_trial_name()
    train_trial(job, config["space"], trial_dir, tune.report)


def trial_name(trial: Any) -> str:
    # The experiment tag starts with the searcher's trial counter, which a restore continues.
    return f"trial_{int(trial.experiment_tag.split('_')[0]):03d}"


# ---------------------------------------------------------------------------------------------------
# Running a tune


@dataclass(frozen=True)
class TunedTrial:
    """A trial as its run directories record it."""

    name: str
    values: dict[str, Any]  # space key → the value tried
    step: int  # the last step every seed evaluated at (0: none yet)
    returns: list[float]  # each seed's evaluation at `step`
    status: str  # complete | stopped (by ASHA) | failed | unfinished (in flight when the tune stopped)
    error: str = ""

    @property
    def score(self) -> float:
        return compare.iqm(self.returns) if self.returns else math.nan


@dataclass(frozen=True)
class TuneReport:
    directory: Path
    trials: list[TunedTrial]  # ranked: complete trials by score, then the others
    best: TunedTrial | None
    ran: int
    backend: str
    interrupted: bool  # Ctrl-C ended the tune before its last trial: the same command continues it


def read_trial(trial_dir: Path, total: int, ended: bool = True) -> TunedTrial:
    """A trial from its run directories; `ended`: Tune has ended it (else it was in flight)."""
    params = trial_dir / "params.yaml"
    try:
        values = yaml.safe_load(params.read_text()) or {}
    except yaml.YAMLError as e:
        raise TuneError(f"{params} is not valid YAML ({yaml_reason(e)})") from None
    if not isinstance(values, dict):
        raise TuneError(f"{params} is not a mapping of the trial's values")
    seeds = {int(p.name[5:]): p for p in trial_dir.glob("seed_*") if p.name[5:].isdigit()}  # seed_<S>
    seed_dirs = [seeds[seed] for seed in sorted(seeds)]
    errors = [
        ((p / "error.txt").read_text().splitlines() or ["failed"])[0]
        for p in seed_dirs
        if (p / "error.txt").is_file()
    ]
    curves = []
    for p in seed_dirs:
        run = compare.load_run(p) if (p / "config.yaml").is_file() else None
        curves.append(dict(zip(run.eval_steps.astype(int), run.eval_returns)) if run is not None else {})
    common = set.intersection(*(set(c) for c in curves)) if curves else set()
    reported = trial_dir / REPORTED
    if reported.is_file():  # the seeds may have gone on past a stop
        common &= {int(word) for word in reported.read_text().split() if word.isdigit()}
    step = max(common, default=0)
    returns = [float(c[step]) for c in curves] if step else []
    # Ended by Tune short of the last step, a trial was stopped by ASHA.
    status = "failed" if errors else "complete" if step == total else "stopped" if ended else "unfinished"
    return TunedTrial(trial_dir.name, values, step, returns, status, errors[0] if errors else "")


def collect(directory: Path, total: int, ended: set[str] | None = None) -> list[TunedTrial]:
    """Every trial with a run directory; `ended` names those Tune has ended (None: all)."""
    runs = directory / "runs"
    dirs = sorted(p for p in runs.glob("trial_*") if (p / "params.yaml").is_file()) if runs.is_dir() else []
    return [read_trial(p, total, ended is None or p.name in ended) for p in dirs]


def rank(trials: list[TunedTrial]) -> list[TunedTrial]:
    """Complete trials by their IQM, best first; then the stopped ones, furthest first, by theirs; then the
    failed and unfinished ones."""
    order = {"complete": 0, "stopped": 1}

    def key(t: TunedTrial) -> tuple[int, int, float]:
        return (order.get(t.status, 2), -t.step, -t.score if not math.isnan(t.score) else math.inf)

    return sorted(trials, key=key)


def run_tune(
    spec: TuneSpec,
    directory: Path,
    *,
    address: str | None = None,
    on_trial_done: Callable[[TunedTrial, int], None] | None = None,
) -> TuneReport:
    """Run the tune in `directory`, or continue it there (the same spec), and write its reports."""
    directory = Path(directory).absolute()
    base = prepare(spec, directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec.save(directory / SPEC_FILE)
    backend, ran, ended = _fit(spec, base, directory, address, on_trial_done)
    trials = rank(collect(directory, base.loop.total_steps, ended))
    best = next((t for t in trials if t.status == "complete"), None)
    interrupted = len(ended) < spec.trials
    write_reports(directory, spec, base, trials, best, interrupted)
    return TuneReport(directory, trials, best, ran, backend, interrupted)


def _fit(
    spec: TuneSpec,
    base: Config,
    directory: Path,
    address: str | None,
    on_trial_done: Callable[[TunedTrial, int], None] | None,
) -> tuple[str, int, set[str]]:
    """Fit (or restore and finish) the Tune experiment; where it ran, how many trials ended now, and the
    names of all that have ended."""
    # Tune saves its experiment state (trials and searcher) at most this often; 0 is after every event,
    # so a kill loses no finished trial. Trial errors are ours to report, in one line each.
    driver = {"TUNE_GLOBAL_CHECKPOINT_S": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
    total = base.loop.total_steps
    with backends.ray_session(address) as description, backends.environ(driver), _quiet_loggers():
        from ray import tune

        class Reporter(tune.Callback):
            def __init__(self) -> None:
                self.ran = 0  # trials ended in this session
                self.ended: set[str] = set()  # every trial ended, earlier sessions' too
                self.stepped = False

            def on_step_end(self, iteration, trials, **info):
                # After each step of Tune's loop, not at the experiment's end: after Ctrl-C, Tune's cleanup
                # terminates the trials in flight (which its saved state keeps as running, to resume).
                self.stepped = True
                self.ended = {trial_name(t) for t in trials if t.status in ("TERMINATED", "ERROR")}

            def on_experiment_end(self, trials, **info):
                if not self.stepped:  # a finished tune, restored: no step ran
                    self.ended = {trial_name(t) for t in trials if t.status in ("TERMINATED", "ERROR")}

            def _finished(self, trials: list[Any], trial: Any) -> None:
                self.ran += 1
                ended = 1 + sum(t.status in ("TERMINATED", "ERROR") for t in trials if t is not trial)
                path = directory / "runs" / trial_name(trial)
                if on_trial_done is not None and (path / "params.yaml").is_file():
                    on_trial_done(read_trial(path, total), ended)

            def on_trial_complete(self, iteration, trials, trial, **info):
                self._finished(trials, trial)

            def on_trial_error(self, iteration, trials, trial, **info):
                self._finished(trials, trial)

        trainable = tune.with_resources(_tune_trainable, {"cpu": spec.cpus_per_trial})
        path = directory / "ray" / EXPERIMENT
        if tune.Tuner.can_restore(str(path)):
            tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True)
        else:
            tuner = _new_tuner(spec, base, directory, trainable)
        # Set after the Tuner pickled its state (at construction), so a restore does not bring back the
        # reporter of the session that started the tune.
        reporter = Reporter()
        assert tuner._local_tuner is not None  # None only for a Tuner run inside Ray Client
        tuner._local_tuner.get_run_config().callbacks = [reporter]
        tuner.fit()
        return description, reporter.ran, reporter.ended


@contextmanager
def _quiet_loggers() -> Iterator[None]:
    """Optuna's note of each study and Tune's list of failed trials: the reports say it, in one place."""
    import logging

    import optuna

    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.CRITICAL)
    try:
        with _optuna_verbosity(optuna.logging.WARNING):
            yield
    finally:
        tune_logger.setLevel(level)


@contextmanager
def _optuna_verbosity(level: int) -> Iterator[None]:
    """Optuna's verbosity (process-wide) at `level` for the block only: whoever imports ddpg keeps theirs."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _new_tuner(spec: TuneSpec, base: Config, directory: Path, trainable: Any) -> Any:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    reports = len(eval_steps(base))
    job = {
        "base": base.replace(progress=False).to_dict(),  # nobody sees a worker's terminal
        "space": spec.space,
        "seeds": [base.loop.seed + i for i in range(spec.seeds)],
        "runs": str(directory / "runs"),
        "threads": max(1, int(spec.cpus_per_trial)),
        "total": base.loop.total_steps,
    }
    sampler = optuna.samplers.TPESampler(
        seed=base.loop.seed, n_startup_trials=min(10, max(1, spec.trials // 3))
    )
    return tune.Tuner(
        trainable,
        param_space={"space": {d.key: d.domain() for d in spec.distributions}, "job": job},
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=OptunaSearch(sampler=sampler),
            # Rungs at a third of the evaluations and after; a trial below the best third there stops.
            scheduler=ASHAScheduler(max_t=reports, grace_period=max(1, reports // 3), reduction_factor=3),
            num_samples=spec.trials,
            # A trial's end waits for its seeds' summaries, longer than Tune waits to reuse an actor.
            reuse_actors=False,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(directory / "ray"), verbose=0),
    )


# ---------------------------------------------------------------------------------------------------
# Reports


def write_reports(
    directory: Path,
    spec: TuneSpec,
    base: Config,
    trials: list[TunedTrial],
    best: TunedTrial | None,
    interrupted: bool = False,
) -> None:
    """summary.md, history.png, importance.png and best.yaml, all from the run directories."""
    dists = spec.distributions
    figures = _figures(directory, dists, trials)
    text = summary_markdown(spec, base, trials, best, figures, interrupted)
    atomic_write(directory / "summary.md", text)
    if best is not None:
        config = configure(base.to_dict(), [assignment(d, best.values[d.key]) for d in dists])
        tried = ", ".join(f"{k}={_shown(v)}" for k, v in best.values.items())
        header = (
            f"# ddpg tune {directory.name}: {best.name}, IQM {best.score:.2f} over {len(best.returns)} "
            f"seeds at step {best.step}\n# {tried}\n"
        )
        atomic_write(directory / "best.yaml", header + config_yaml(config))


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_markdown(
    spec: TuneSpec,
    base: Config,
    trials: list[TunedTrial],
    best: TunedTrial | None,
    figures: list[str],
    interrupted: bool = False,
) -> str:
    keys = [d.key for d in spec.distributions]
    lines = [
        f"# Tune: {base.environment.id}, {len(trials)} of {spec.trials} trials, {spec.seeds} seeds each",
        "",
        f"Objective: the IQM over the seeds of the evaluation mean return at step {base.loop.total_steps} "
        "(TPE proposes, ASHA stops a trial below the best third at a rung; a stopped trial counts with "
        "the IQM at its last step).",
        "",
        f"Space: {', '.join(f'`{d.text}`' for d in spec.distributions)}",
        "",
        "| rank | trial | " + " | ".join(keys) + " | IQM | seeds' returns | step | status |",
        "|---" * (len(keys) + 6) + "|",
    ]
    for i, t in enumerate(trials, 1):
        returns = ", ".join(f"{r:.1f}" for r in t.returns)
        status = t.status + (f": {t.error}" if t.error else "")
        cells = [str(i), t.name, *(_shown(t.values.get(k, "")) for k in keys)]
        score = "" if math.isnan(t.score) or t.status == "failed" else f"{t.score:.2f}"
        cells += [score, returns, str(t.step), status]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    if interrupted:
        lines += ["Interrupted: the same command continues the tune, the unfinished trials from scratch.", ""]
    if best is not None:
        lines.append(f"Best: {best.name}, written to best.yaml (`ddpg train --preset best.yaml`).")
    else:
        lines.append("No trial ran to the end yet: no best.yaml.")
    lines += ["", *(f"![{name}]({name})" for name in figures), ""]
    return "\n".join(lines)


def _figures(directory: Path, dists: list[Distribution], trials: list[TunedTrial]) -> list[str]:
    """history.png (each trial's IQM in the order they started, the best complete so far) and importance.png
    (Optuna's PED-ANOVA importance of each key for reaching the best IQMs); the names of those drawn."""
    from matplotlib.ticker import MaxNLocator

    from ddpg.run.plots import new_figure, save_figure

    # What TPE saw: the complete trials' IQM, and the stopped ones' at the step ASHA stopped them.
    scored = sorted((t for t in trials if t.status != "failed" and t.returns), key=lambda t: t.name)
    if not scored:
        return []
    fig, ax = new_figure(figsize=(6.4, 3.6))
    for status, marker in (("complete", "o"), ("stopped", "x")):
        chosen = [t for t in scored if t.status == status]
        ax.scatter([_number(t) for t in chosen], [t.score for t in chosen], marker=marker, label=status)
    complete = [t for t in scored if t.status == "complete"]
    if complete:
        best = np.maximum.accumulate([t.score for t in complete])
        ax.step([_number(t) for t in complete], best, where="post", color="black", label="best complete")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel="IQM of the seeds' evaluation return", title="Optimisation history")
    ax.legend(fontsize="small")
    save_figure(fig, directory / "history.png")
    drawn = ["history.png"]
    importances = _importances(dists, scored)
    if importances:
        fig, ax = new_figure(figsize=(6.4, 0.6 + 0.45 * len(importances)))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set(xlabel="importance for the IQM (PED-ANOVA)", title="Parameter importance")
        save_figure(fig, directory / "importance.png")
        drawn.append("importance.png")
    return drawn


def _number(trial: TunedTrial) -> int:
    return int(trial.name.split("_")[1])


def _importances(dists: list[Distribution], scored: list[TunedTrial]) -> dict[str, float]:
    """Optuna's PED-ANOVA importances (it needs no scikit-learn) over the scored trials; empty with too
    few trials to tell."""
    import optuna

    if len(scored) < 2 or len({t.score for t in scored}) < 2:
        return {}
    distributions = {d.key: d.optuna_distribution() for d in dists}
    with _optuna_verbosity(optuna.logging.ERROR):  # no notes of the study made for this
        study = optuna.create_study(direction="maximize")
        for t in scored:
            params = {k: v for k, v in t.values.items() if k in distributions}
            trial = optuna.trial.create_trial(params=params, distributions=distributions, value=t.score)
            study.add_trial(trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            return optuna.importance.get_param_importances(study, evaluator=evaluator)
