"""`ddpg train`, `evaluate`, `plot`, `resume`, `export` and `envs`: one run directory at a time."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ddpg.cli.shared import (
    UsageError,
    add_overrides,
    env_overrides,
    png,
    positive,
    ray_address,
    require_directory,
    require_run,
    resolved_config,
    seed,
)
from ddpg.run.export import FORMATS

if TYPE_CHECKING:  # the agent (torch) loads when a command runs, not when the parser is built
    from ddpg.run.agent import DDPG


def register(sub: argparse._SubParsersAction) -> None:
    _register_train(sub)
    _register_evaluate(sub)
    _register_plot(sub)
    _register_resume(sub)
    _register_export(sub)
    p = sub.add_parser("envs", help="list presets and ddpg's own environments")
    p.set_defaults(func=cmd_envs)


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an agent and write a run directory",
        description="Train DDPG, TD3 or TD7. The preset is the env's own (`ddpg envs` lists them), "
        "or `default` (TD3 with the usual modern settings) for an env without one, unless --preset is "
        "given (`--preset paper`: Lillicrap et al.'s exact settings); "
        "--set overrides any config field (dotted for nested: noise.sigma=0.2, "
        "env.KEY=VALUE for the environment's constructor). `ddpg config` with the same --env, "
        "--preset, --steps, --seed, --algo and --set prints the resolved config; `ddpg config --fields` "
        "lists every field.",
    )
    p.add_argument(
        "--env", help="Gymnasium id or package.module:ClassName (default: the preset's, Pendulum-v1)"
    )
    p.add_argument("--preset", help="preset name (see `ddpg envs`) or a YAML file")
    p.add_argument("--steps", type=positive, help="total environment steps")
    p.add_argument("--seed", type=seed, help="random seed (a CPU run repeats bit for bit on the same CPU)")
    p.add_argument("--run-dir", type=Path, help="where to write the run (default: runs/<generated name>)")
    p.add_argument(
        "--algo",
        choices=("ddpg", "td3", "td7"),
        help="the update, keeping the preset's other settings (default: the preset's algo; ddpg where it "
        "names none; td3 in `default`): ddpg; td3: twin critics, target smoothing, delayed actor; td7: "
        "TD3 with SALE embeddings, LAP replay, hard target updates and value clipping (docs/algorithms.md)",
    )
    add_overrides(p, "KEY=VALUE", "override config fields, e.g. --set tau=0.005 hidden_sizes=[64,64]")
    _add_address(p)
    p.set_defaults(func=cmd_train)


def _add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        type=ray_address,
        help="for a run with actors (--set actors=N): join a Ray cluster, auto or HOST:PORT "
        "(default: an embedded local Ray)",
    )


def _add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default="shipped",
        metavar="NAME",
        help="shipped (default: best where the run has evaluated, else latest), best (the policy of the "
        "best evaluation so far), latest (the last policy) or a kept step_N under RUN_DIR/checkpoints",
    )


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="run the deterministic policy of a run",
        description="Evaluate a run's checkpoint without noise, networks in eval mode: the policy the run "
        "ships (checkpoints/best, its best evaluation's, where it has one, else checkpoints/latest) unless "
        "--checkpoint says otherwise.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _add_checkpoint(p)
    p.add_argument(
        "--episodes", type=positive, default=None, help="episodes (default: the run's eval_episodes)"
    )
    p.add_argument("--seed", type=seed, default=None, help="seed of the first episode (default: the run's)")
    p.add_argument("--video", type=Path, metavar="FILE.mp4|FILE.gif", help="record the episodes")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_overrides(p, "env.KEY=VALUE", "evaluate on a variant of the run's env, e.g. --set env.track=oval")
    _add_trust(p)
    p.set_defaults(func=cmd_evaluate)


def _add_trust(p: argparse.ArgumentParser) -> None:
    # A run directory is data: code it names (an env class, a reward function) is imported only when
    # the user names it too.
    p.add_argument(
        "--env",
        metavar="ID",
        help="the environment (default: the run's); a run whose env is package.module:ClassName "
        "needs it given here, as ddpg imports nothing a run directory names",
    )
    p.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="import this code, named by the run's env arguments (e.g. a reward function)",
    )


def _register_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="plot one run or overlay several",
        description="Episode returns with the evaluation curve, TD error and actor loss.",
    )
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "--out",
        type=png,
        help="output PNG (default: RUN_DIR/plots/training.png for one run, comparison.png for several)",
    )
    p.add_argument(
        "--group-by",
        dest="group_by",
        action="append",
        default=[],
        metavar="KEY[,KEY]",
        help="aggregate seeds per value of these config keys (e.g. --group-by tau,noise.sigma): IQM of the "
        "eval curve and of the final eval with 95%% stratified bootstrap CIs, performance profiles; a "
        "directory of runs (a sweep) counts as its runs",
    )
    p.set_defaults(func=cmd_plot)


def _register_resume(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume",
        help="continue a run from its latest checkpoint",
        description="Continue RUN_DIR from checkpoints/latest with everything restored (weights, "
        "optimisers, replay buffer, noise, every random generator, the current episode), so the logs "
        "match an uninterrupted run's on CPU (except wall_time). Rows logged after that checkpoint "
        "are removed first and written again (TensorBoard hides them). A run checkpoints before its first "
        "step, every checkpoint_every steps (default: every evaluation) and at its end; Ctrl-C or SIGTERM "
        "stops it after the current step with a checkpoint. A run killed after its last checkpoint but "
        "before summary.json only gets its summary.json and plot written.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--steps",
        type=positive,
        help="new total environment steps (default: the run's total_steps); extends a finished run",
    )
    _add_trust(p)
    _add_address(p)
    p.set_defaults(func=cmd_resume)


def _register_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's deterministic policy for deployment (ONNX, TorchScript or npz)",
        description="Write the deterministic policy of a run's checkpoint as one file, from the raw "
        "observation the environment gives (pixels: the stacked uint8 frames) to the action in the "
        "environment's units, with obs_norm, the network (an encoder included) and the action rescale "
        "inside: what `ddpg evaluate` runs. onnx: input `obs`, output `action`, a dynamic batch axis "
        "(needs pip install 'ddpg[export]'); torchscript: for torch.jit.load; npz: the weights and a "
        "JSON description, for numpy or C (docs/deploy.md).",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _add_checkpoint(p)
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="onnx, torchscript or npz (default: from the suffix of --out: .onnx, .pt or .ts, .npz)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the file to write")
    _add_trust(p)
    p.set_defaults(func=cmd_export)


# ---------------------------------------------------------------------------------------------------


def _report(summary: dict, episodes: int, run_dir: Path) -> None:
    mean, std = summary["final_eval_mean_return"], summary["final_eval_std_return"]
    if mean is not None:
        print(f"final evaluation: {mean:.1f} ± {std:.1f} over {episodes} episodes")
        best, step = summary.get("best_eval_mean_return"), summary.get("best_eval_step")
        if best is not None and step is not None and best > mean:
            print(
                f"shipped: the best evaluation's policy, {best:.1f} at step {step} (checkpoints/best; "
                f"ddpg evaluate {run_dir} --checkpoint latest runs the final one)"
            )
    print(f"{summary['train_steps_per_second']:.0f} steps/s; run directory: {run_dir}")


@contextmanager
def _stop_on_signals(agent: DDPG) -> Iterator[None]:
    """Ctrl-C or SIGTERM ends training after the current step, with a checkpoint and the summary; a
    second one interrupts at once."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        agent.request_stop("signal")

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _check_address(address: str | None, actors: int) -> None:
    if address is not None and actors == 0:
        raise UsageError("--address is for runs with actors: add --set actors=N (docs/actors.md)")


def _train(agent: DDPG, run_dir: Path, address: str | None) -> int:
    """`learn` into `run_dir`, reported; 130 when a signal stopped it (checkpoint and summary written)."""
    with _stop_on_signals(agent):
        summary = agent.learn(run_dir=run_dir, address=address)
    if agent.stop_reason == "stop_at_return":
        print(f"stopped at step {agent.step}: an evaluation reached stop_at_return", flush=True)
    elif agent.stop_requested:
        print(
            f"error: interrupted at step {agent.step}; checkpoint and summary written, "
            f"continue with: ddpg resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    _report(summary, agent.config.logging.eval_episodes, run_dir)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG, run_name
    from ddpg.run.lock import RunInUse
    from ddpg.run.run_dir import FailedStart, holds_a_run

    config = resolved_config(args)
    _check_address(args.address, config.loop.actors)
    run_dir = args.run_dir or Path("runs") / run_name(config)
    # A lock file alone is a start that wrote nothing yet: a retry may go on (the lock says if it is live).
    if holds_a_run(run_dir):
        resumable = (run_dir / "checkpoints" / "latest").exists()
        hint = f" (or continue it: ddpg resume {run_dir})" if resumable else ""
        raise UsageError(f"run directory {run_dir} already exists; choose another --run-dir{hint}")
    start = FailedStart(run_dir)
    with DDPG(config.environment.id, config) as agent:  # makes and checks the env before anything is written
        try:
            # Taken (which makes the directory) before its name is printed: a path that cannot be a
            # directory, or a run in use, is then the only line. `learn` keeps the lock it finds held.
            agent.lock(run_dir)
            print(f"run directory: {run_dir}", flush=True)
            return _train(agent, run_dir, args.address)
        except RunInUse:
            raise  # another process's run: not ours to touch
        except Exception as e:
            if agent.step == 0:
                # Nothing trained yet: leave nothing that blocks the same command again. A run that has
                # progressed keeps its checkpoints, to resume.
                agent.close()
                start.undo()
            elif isinstance(e, OSError):
                e.add_note(f"the run is kept: continue it with ddpg resume {run_dir}")
            raise


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG
    from ddpg.run.persistence import checkpoint_directory

    require_run(args.run_dir)
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video must end in .mp4 or .gif, got {args.video}")
    variant = env_overrides(args.overrides)
    checkpoint = checkpoint_directory(args.run_dir, args.checkpoint)
    with DDPG.load(checkpoint, args.env, trust=args.trust, env_kwargs=variant) as agent:
        result = agent.evaluate(args.episodes, args.seed, video_path=args.video)
        which = {"checkpoint": _shown(args.run_dir, checkpoint), "step": agent.step}
    if args.json:
        out = result.to_json()
        keys = ("mean_return", "std_return", "episodes", "info_means")
        print(json.dumps({**{k: out[k] for k in keys}, **which}))
    else:
        print(
            f"{result.mean_return:.2f} ± {result.std_return:.2f} over {len(result.returns)} episodes "
            f"({which['checkpoint']}, step {which['step']})"
        )
        if args.video:
            print(f"video: {args.video}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG
    from ddpg.run.export import export_format
    from ddpg.run.persistence import checkpoint_directory

    require_run(args.run_dir)
    if args.out.is_file() and args.out.resolve().is_relative_to(args.run_dir.resolve()):
        # Replacing a checkpoint's file, or the run's config or logs, would break the run it exports.
        raise UsageError(f"--out {args.out} is a file of the run {args.run_dir}; give a new path")
    fmt = export_format(args.out, args.format)  # before loading: a missing package is said at once
    checkpoint = checkpoint_directory(args.run_dir, args.checkpoint)
    with DDPG.load(checkpoint, args.env, trust=args.trust) as agent:
        agent.export(args.out, fmt)
        which = f"{_shown(args.run_dir, checkpoint)}, step {agent.step}"
        print(f"{fmt} policy of {args.run_dir} ({which}): {args.out}")
    return 0


def _shown(run_dir: Path, checkpoint: Path) -> str:
    """The checkpoint `checkpoint_directory` found, as the user names it: checkpoints/best for `shipped`,
    checkpoints/step_000000100 for step_100; a saved agent's directory as given."""
    return f"checkpoints/{checkpoint.name}" if checkpoint != run_dir else str(run_dir)


def cmd_plot(args: argparse.Namespace) -> int:
    from ddpg.experiments.sweep import SPEC_FILE, SweepSpec
    from ddpg.run.plots import training_figure

    if not args.group_by:
        # A sweep's directory is compared by the keys of its grid, as `ddpg sweep` compared it.
        sweeps = [p / SPEC_FILE for p in args.run_dirs if (p / SPEC_FILE).is_file()]
        args.group_by = [key for spec in sweeps for key, _ in SweepSpec.load(spec).grid]
    if args.group_by:
        return _plot_grouped(args)
    for run in args.run_dirs:
        if not (run / "metrics.csv").is_file():
            raise UsageError(f"{run} is not a run directory (no metrics.csv)")
    out = args.out or (
        args.run_dirs[0] / "plots" / "training.png" if len(args.run_dirs) == 1 else Path("comparison.png")
    )
    training_figure(args.run_dirs, out)
    print(out)
    return 0


def _plot_grouped(args: argparse.Namespace) -> int:
    from ddpg.experiments import compare

    keys = [k.strip() for text in args.group_by for k in text.split(",") if k.strip()]
    runs = compare.find_runs(args.run_dirs)
    if not runs:
        raise UsageError("no run directories (with config.yaml and eval.csv) among the paths given")
    out = args.out or Path("comparison.png")
    try:
        settings = compare.group_runs([compare.load_run(r) for r in runs], keys)
    except compare.UnknownKeyError as e:
        raise UsageError(f"--group-by {e.args[0]}: not a key of the runs' config.yaml") from None
    if not settings:
        raise UsageError("none of the runs has finished (summary.json) with an evaluation")
    compare.comparison_figure(settings, out, f"{len(runs)} runs grouped by {', '.join(keys)}")
    print(compare.summary_markdown(settings, f"{len(runs)} runs grouped by {', '.join(keys)}"), end="")
    print(out)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG

    require_directory(args.run_dir)
    with DDPG.resume(args.run_dir, total_steps=args.steps, env=args.env, trust=args.trust) as agent:
        # Killed after its final checkpoint, before its summary: only the summary is missing.
        if agent.step >= agent.config.loop.total_steps:
            agent.finish(args.run_dir)
            wrote = "wrote summary.json and plots/training.png"
            print(f"{args.run_dir} had trained all {agent.step} steps; {wrote}")
            return 0
        _check_address(args.address, agent.config.loop.actors)
        print(f"resuming {args.run_dir} at step {agent.step} of {agent.config.loop.total_steps}", flush=True)
        return _train(agent, args.run_dir, args.address)


def cmd_envs(args: argparse.Namespace) -> int:
    from ddpg.config import GENERAL_PRESETS, flatten, load_preset, preset_names
    from ddpg.envs import registered_ids

    print("presets (ddpg train --preset NAME; chosen automatically by --env ID, else default):")
    for name in preset_names():
        what = GENERAL_PRESETS.get(name) or flatten(load_preset(name)).get("env_id", "")
        print(f"  {name:32s} {what}")
    print("ddpg's own environments:")
    for env_id in registered_ids():
        print(f"  {env_id}")
    print(
        "any other Gymnasium id with a Box action space, or package.module:ClassName, works too, "
        "with the default preset"
    )
    return 0
