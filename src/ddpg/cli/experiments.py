"""`ddpg sweep`: a grid of settings × seeds as trials on Ray Tune (or in this process), compared.
`ddpg tune`: a search over a space of settings on Ray Tune (Optuna's TPE, ASHA), each trial K seeds."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ddpg.cli.shared import UsageError, add_overrides, positive, ray_address


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of settings × seeds on Ray Tune and compare them",
        description="Each grid point × seed is one trial and one ordinary run directory under OUT/runs/. "
        "Without --address an embedded local Ray uses this machine's cores; with one, the same command "
        "joins a Ray cluster. Writes OUT/results.csv, OUT/summary.md and OUT/comparison.png. "
        "Exit status 1 when any trial failed (each failure is reported; the others still run).",
    )
    p.add_argument("--env", help="Gymnasium id or package.module:ClassName (default: the preset's)")
    p.add_argument("--preset", help="preset name (see `ddpg envs`) or a YAML file")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and its values, parsed like --set (repeat for a product), "
        "e.g. --grid tau=0.001,0.005 --grid hidden_sizes=[64,64],[256,256]",
    )
    p.add_argument("--seeds", type=positive, help="seeds per grid point (default 3)")
    p.add_argument("--steps", type=positive, help="total environment steps per trial")
    p.add_argument("--out", type=Path, help="sweep directory (default: sweeps/<env>_<keys>_<time>)")
    _add_address(p)
    p.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, help="CPUs per trial (default 1)")
    add_overrides(p, "KEY=VALUE", "override config fields for every trial")
    p.add_argument("--resume", type=Path, metavar="DIR", help="finish an interrupted sweep in DIR")
    p.set_defaults(func=cmd_sweep)
    register_tune(sub)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ddpg.experiments import sweep

    if args.cpus_per_trial is not None and not args.cpus_per_trial > 0:
        raise UsageError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    spec, directory, trials = _resumed(args) if args.resume is not None else _new(args)
    if args.address is not None and not sweep.ray_available():
        raise UsageError("--address needs Ray: pip install 'ddpg[sweep]'")

    def report(result: sweep.TrialResult, done: int, total: int) -> None:
        what = (
            f"final eval {result.final_eval:.1f}, {result.steps_per_s:.0f} steps/s"
            if result.status == "ok"
            else f"FAILED: {result.error}"
        )
        print(f"[{done}/{total}] {result.trial.name}: {what}", flush=True)

    print(f"sweep directory: {directory}", flush=True)
    summary = sweep.run_sweep(
        spec,
        directory,
        trials=trials,
        resume=args.resume is not None,
        address=args.address,
        on_trial_done=report,
    )
    ok = len(summary.results) - len(summary.failed)
    print(f"{ok} of {len(summary.results)} trials finished ({summary.ran} run now, on {summary.backend})")
    for rank, s in enumerate(summary.settings, 1):
        print(
            f"{rank:3d}. {s.label}: final eval IQM {s.final.iqm:.1f} [{s.final.low:.1f}, {s.final.high:.1f}]"
        )
    for failure in summary.failed:
        print(f"failed: {failure.trial.name}: {failure.error}", file=sys.stderr)
    if summary.failed:
        print(f"to re-run the failed and unfinished trials: ddpg sweep --resume {directory}", file=sys.stderr)
    print(f"results: {directory / 'results.csv'}, {directory / 'summary.md'}, {directory / 'comparison.png'}")
    return 1 if summary.failed else 0


def _resumed(args: argparse.Namespace):
    """The spec, directory and trials of `--resume DIR`, which reads its spec from DIR."""
    from ddpg.experiments import sweep

    given = [f"--{n}" for n in ("env", "preset", "grid", "seeds", "steps", "out", "set")]
    values = (args.env, args.preset, args.grid, args.seeds, args.steps, args.out, args.overrides)
    clash = [n for n, v in zip(given, values) if v]
    if clash:
        raise UsageError(f"--resume reads the spec from DIR/sweep.yaml; drop {', '.join(clash)}")
    directory = args.resume
    spec = sweep.SweepSpec.load(directory / sweep.SPEC_FILE)
    if args.cpus_per_trial is not None:  # may change on resume; kept for this session only
        spec = dataclasses.replace(spec, cpus_per_trial=args.cpus_per_trial)
    return spec, directory, sweep.plan(spec)


def _new(args: argparse.Namespace):
    """The spec, directory and trials of a new sweep; prepares the directory."""
    from ddpg.experiments import sweep

    if not args.grid:
        raise UsageError("give at least one --grid KEY=V1,V2 (or --resume DIR)")
    spec = sweep.SweepSpec(
        grid=sweep.parse_grid(args.grid),
        seeds=args.seeds or 3,
        env=args.env,
        preset=args.preset,
        steps=args.steps,
        overrides=list(args.overrides),
        cpus_per_trial=args.cpus_per_trial or 1.0,
    )
    directory = args.out or sweep.default_directory(spec)
    return spec, directory, sweep.prepare(spec, directory)


def _add_address(p: argparse.ArgumentParser) -> None:
    help = "join a Ray cluster: auto or HOST:PORT (default: embedded local Ray)"
    p.add_argument("--address", type=ray_address, help=help)


def register_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search settings with Optuna's TPE and ASHA on Ray Tune; write the best as a preset",
        description="Each trial trains one proposed setting with K seeds in lockstep (one ordinary run "
        "directory each, under OUT/runs/) and reports the IQM of the seeds' evaluation returns after "
        "every evaluation; ASHA stops the laggards, TPE maximises the IQM at the last step. Writes "
        "OUT/best.yaml (a preset for `ddpg train --preset OUT/best.yaml`) and OUT/summary.md with "
        "OUT/history.png and OUT/importance.png. A killed tune continues with the same command. "
        "Without --address an embedded local Ray uses this machine's cores. Exit status 1 when no "
        "trial ran to the end.",
    )
    p.add_argument("--env", help="Gymnasium id or package.module:ClassName (default: the preset's)")
    p.add_argument("--preset", help="preset name (see `ddpg envs`) or a YAML file")
    p.add_argument(
        "--space",
        nargs="+",
        action="extend",
        required=True,
        metavar="KEY=DIST",
        help="a config key and its distribution: loguniform(a,b), uniform(a,b), int(a,b) (both ends "
        "included) or choice(x,y,...) with values parsed like --set, e.g. --space "
        "actor_lr=loguniform(1e-4,1e-2) hidden_sizes=choice([64,64],[256,256])",
    )
    p.add_argument("--trials", type=positive, required=True, help="trials (settings) to try")
    p.add_argument("--seeds", type=positive, default=3, help="seeds per trial (default 3)")
    p.add_argument("--steps", type=positive, help="total environment steps per seed (default: the preset's)")
    p.add_argument("--out", type=Path, required=True, help="tune directory; the same command continues it")
    _add_address(p)
    p.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, help="CPUs per trial (default 1)")
    add_overrides(p, "KEY=VALUE", "override config fields for every trial")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from ddpg.experiments import tune

    if args.cpus_per_trial is not None and not args.cpus_per_trial > 0:
        raise UsageError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    spec = tune.TuneSpec(
        space=list(args.space),
        trials=args.trials,
        seeds=args.seeds,
        env=args.env,
        preset=args.preset,
        steps=args.steps,
        overrides=list(args.overrides),
        cpus_per_trial=args.cpus_per_trial or 1.0,
    )
    tune.prepare(spec, args.out)  # every check before anything is written or printed

    def report(trial: tune.TunedTrial, done: int) -> None:
        values = ", ".join(f"{k}={v}" for k, v in trial.values.items())
        what = f"FAILED: {trial.error}" if trial.error else f"IQM {trial.score:.1f} at step {trial.step}"
        stopped = " (stopped by ASHA)" if trial.status == "stopped" else ""
        print(f"[{done}/{spec.trials}] {trial.name} ({values}): {what}{stopped}", flush=True)

    print(f"tune directory: {args.out}", flush=True)
    result = tune.run_tune(spec, args.out, address=args.address, on_trial_done=report)
    ran = f"{result.ran} run now, on {result.backend}"
    trials = f"{len(result.trials)} trial{'' if len(result.trials) == 1 else 's'}"
    print(f"{trials} ({ran}); ranked in {args.out / 'summary.md'}")
    if result.interrupted:
        print("error: interrupted; the same command continues the tune", file=sys.stderr)
        return 130
    if result.best is None:
        print("error: no trial ran to the end; no best.yaml", file=sys.stderr)
        return 1
    print(f"best: {result.best.name}, IQM {result.best.score:.2f}: {args.out / 'best.yaml'}")
    return 0
