"""The `ddpg` command: thin commands over the trainer, evaluation and plots.

Every user mistake ends as one line `error: …` on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path
from typing import NoReturn

from ddpg.config import ConfigError
from ddpg.envs import EnvError
from ddpg.experiments.sweep import SweepError
from ddpg.files import atomic_file
from ddpg.run.checkpoint import CheckpointError


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it."""


USER_ERRORS = (UsageError, ConfigError, EnvError, CheckpointError, SweepError)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _png(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"must be a .png file, got {text!r}")
    return path


def _add_overrides(parser: argparse.ArgumentParser, metavar: str, help: str) -> None:
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar=metavar, help=help
    )


def _report(summary: dict, episodes: int, run_dir: Path) -> None:
    mean, std = summary["final_eval_mean_return"], summary["final_eval_std_return"]
    if mean is not None:
        print(f"final evaluation: {mean:.1f} ± {std:.1f} over {episodes} episodes")
        best, step = summary.get("best_eval_mean_return"), summary.get("best_eval_step")
        if best is not None and step is not None and best > mean:
            print(f"best evaluation: {best:.1f} at step {step} (ddpg evaluate {run_dir} --checkpoint best)")
    print(f"{summary['train_steps_per_second']:.0f} steps/s; run directory: {run_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ddpg", description="Deep deterministic policy gradient (Lillicrap et al. 2016).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train an agent and write a run directory",
        description="Train DDPG. The preset is chosen by --env unless --preset is given; "
        "--set overrides any config field (dotted for nested: noise.sigma=0.2, "
        "env.KEY=VALUE for the environment's constructor).",
    )
    p.add_argument(
        "--env", help="Gymnasium id or package.module:ClassName (default: the preset's, Pendulum-v1)"
    )
    p.add_argument("--preset", help="preset name (see `ddpg envs`) or a YAML file")
    p.add_argument("--steps", type=_positive, help="total environment steps")
    p.add_argument("--seed", type=_seed, help="random seed (a CPU run is reproducible bit for bit)")
    p.add_argument("--run-dir", type=Path, help="where to write the run (default: runs/<generated name>)")
    p.add_argument(
        "--algo",
        choices=("ddpg", "td3"),
        help="ddpg (default) or td3: twin critics, target smoothing, delayed actor (docs/algorithms.md)",
    )
    _add_overrides(p, "KEY=VALUE", "override config fields, e.g. --set tau=0.005 hidden_sizes=[64,64]")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="run the deterministic policy of a run",
        description="Evaluate a run's checkpoint (the latest unless --checkpoint says otherwise) without "
        "noise, networks in eval mode.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--checkpoint",
        default="latest",
        metavar="NAME",
        help="latest (default), best (the best evaluation so far) or a kept step_N under RUN_DIR/checkpoints",
    )
    p.add_argument(
        "--episodes", type=_positive, default=None, help="episodes (default: the run's eval_episodes)"
    )
    p.add_argument("--seed", type=_seed, default=None, help="seed of the first episode (default: the run's)")
    p.add_argument("--video", type=Path, metavar="FILE.mp4|FILE.gif", help="record the episodes")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "plot",
        help="plot one run or overlay several",
        description="Episode returns with the evaluation curve, TD error and actor loss.",
    )
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "--out",
        type=_png,
        help="output PNG (default: RUN_DIR/plots/training.png for one run, comparison.png for several)",
    )
    p.add_argument(
        "--group-by",
        dest="group_by",
        action="append",
        default=[],
        metavar="KEY[,KEY]",
        help="aggregate seeds: mean eval curve with a 95%% bootstrap CI per value of these config keys "
        "(e.g. --group-by tau,noise.sigma); a directory of runs (a sweep) counts as its runs",
    )
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "resume",
        help="continue a run from its latest checkpoint",
        description="Continue RUN_DIR from checkpoints/latest with everything restored (weights, "
        "optimisers, replay buffer, noise, every random generator, the current episode), so the logs "
        "match an uninterrupted run's on CPU (except wall_time). Rows logged after that checkpoint "
        "are removed first and written again (TensorBoard hides them). Set checkpoint_every to checkpoint "
        "during training. A run killed after its last checkpoint but before summary.json only gets its "
        "summary.json and plot written.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument(
        "--steps",
        type=_positive,
        help="new total environment steps (default: the run's total_steps); extends a finished run",
    )
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("envs", help="list presets and ddpg's own environments")
    p.set_defaults(func=cmd_envs)

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
    p.add_argument("--seeds", type=_positive, help="seeds per grid point (default 3)")
    p.add_argument("--steps", type=_positive, help="total environment steps per trial")
    p.add_argument("--out", type=Path, help="sweep directory (default: sweeps/<env>_<keys>_<time>)")
    p.add_argument("--address", help="join a Ray cluster: auto or HOST:PORT (default: embedded local Ray)")
    p.add_argument("--cpus-per-trial", dest="cpus_per_trial", type=float, help="CPUs per trial (default 1)")
    _add_overrides(p, "KEY=VALUE", "override config fields for every trial")
    p.add_argument("--resume", type=Path, metavar="DIR", help="finish an interrupted sweep in DIR")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "bench",
        help="benchmarks: replay memory, speed and time to solve against Stable-Baselines3",
        description="Benchmarks; see each command's --help.",
    )
    bench = p.add_subparsers(dest="bench", required=True, parser_class=_Parser, metavar="BENCHMARK")
    b = bench.add_parser(
        "replay",
        help="bytes per transition and sampling rate of the frame replay buffer",
        description="Fill a frame replay buffer with random frames, report the bytes per transition "
        "(from the arrays allocated) and how many stacks per second a batch of 256 samples.",
    )
    b.add_argument("--frame-shape", default="64x64x3", metavar="HxWxC", help="frame shape (default 64x64x3)")
    b.add_argument("--frame-stack", type=_positive, default=3, help="frames per observation (default 3)")
    b.add_argument("--transitions", type=_positive, default=100_000, help="buffer capacity, filled full")
    b.add_argument("--batch-size", type=_positive, default=256, help="sampled batch size (default 256)")
    b.add_argument("--episode-length", type=_positive, default=500, help="steps per episode (default 500)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_bench_replay)

    p = sub.add_parser("lane", help="LaneFollowing-v0 tools", description="LaneFollowing-v0 tools.")
    lane = p.add_subparsers(dest="lane", required=True, parser_class=_Parser, metavar="COMMAND")
    b = lane.add_parser(
        "reference",
        help="distance the scripted controller travels per episode",
        description="Run the scripted lane-pose controller (the reference a pixel policy is measured "
        "against) and report the distance travelled along the lane per episode.",
    )
    b.add_argument("--episodes", type=_positive, default=5, help="episodes (default 5)")
    b.add_argument("--seed", type=_seed, default=0, help="seed of the first episode (default 0)")
    _add_overrides(
        b, "env.KEY=VALUE", "environment arguments, e.g. --set env.map_name=loop env.max_steps=1000"
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_lane_reference)
    p = bench.add_parser(
        "speed",
        help="training steps/s of ddpg and Stable-Baselines3, interleaved",
        description="Pendulum-v1, batch 256, one update per step, same threads; rounds alternate "
        "ddpg and SB3 and the ratio is taken per round. Needs the bench extra (stable-baselines3).",
    )
    p.add_argument("--arch", type=_sizes, default=[64, 64], help="hidden sizes, e.g. 400,300 (default 64,64)")
    p.add_argument("--steps", type=_positive, default=2000, help="measured steps per run (default 2000)")
    p.add_argument("--rounds", type=_positive, default=3, help="ddpg/SB3 pairs (default 3)")
    p.add_argument("--threads", type=_positive, default=1, help="torch threads for both (default 1)")
    p.add_argument("--compile", choices=["true", "false", "auto"], default="true", help="ddpg's update path")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_bench_speed)
    p = bench.add_parser(
        "solve",
        help="wall-clock to solve Pendulum-v1, ddpg preset vs SB3 RL-Zoo settings",
        description="Each seed trains ddpg (its Pendulum-v1 preset) then SB3 (RL-Zoo hyper-parameters), "
        "evaluating every 1000 steps; reports the training time to the first evaluation >= -200.",
    )
    p.add_argument("--seeds", type=_positive, default=5, help="seeds per library (default 5)")
    p.add_argument("--max-steps", type=_positive, default=20_000, help="give up after (default 20000)")
    p.add_argument("--preset", default="Pendulum-v1", help="ddpg preset or YAML (default Pendulum-v1)")
    p.add_argument("--threads", type=_positive, default=1, help="torch threads for both (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_bench_solve)

    p = sub.add_parser(
        "slotcar",
        help="slot-car lap-time references and speed profiles",
        description="Lap-time references for SlotCarRacing-v0 tracks and a run's speed profile.",
    )
    slot = p.add_subparsers(dest="slotcar_command", required=True, parser_class=_Parser, metavar="WHAT")
    q = slot.add_parser(
        "reference",
        help="lap times of the best constant throttle and of the optimal speed profile",
        description="Flying-lap times of the best constant throttle and of the physically optimal "
        "speed profile, and their ratio; --json adds the profile arrays (s, v, v_grip).",
    )
    q.add_argument("--track", default="oval", help="built-in track name or a .yaml/.json track file")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_slotcar_reference)
    q = slot.add_parser(
        "profile",
        help="plot a run's speed against track position with the optimal profile and grip limit",
        description="Drive the run's deterministic policy and plot the speed of its best lap against "
        "track position, with the optimal profile and the grip limit.",
    )
    q.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    q.add_argument("--out", type=_png, help="output PNG (default: RUN_DIR/plots/slotcar_profile.png)")
    q.add_argument("--track", help="drive this track instead of the run's own (name or track file)")
    q.set_defaults(func=cmd_slotcar_profile)
    return parser


# ---------------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from ddpg.config import resolve
    from ddpg.run.agent import DDPG, run_name

    config = resolve(
        env_id=args.env,
        preset=args.preset,
        overrides=args.overrides,
        total_steps=args.steps,
        seed=args.seed,
        algo=args.algo,
    )
    run_dir = args.run_dir or Path("runs") / run_name(config)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        resumable = (run_dir / "checkpoints" / "latest").exists()
        hint = f" (or continue it: ddpg resume {run_dir})" if resumable else ""
        raise UsageError(f"run directory {run_dir} already exists; choose another --run-dir{hint}")
    with DDPG(config.environment.id, config) as agent:  # makes and checks the env before anything is written
        print(f"run directory: {run_dir}", flush=True)
        _report(agent.learn(run_dir=run_dir), config.logging.eval_episodes, run_dir)
    return 0


def _require_run(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    if not (run_dir / "checkpoints" / "latest").exists() and not (run_dir / "manifest.json").exists():
        raise UsageError(f"{run_dir} has no checkpoint (checkpoints/latest); is it a ddpg run directory?")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG

    _require_run(args.run_dir)
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video must end in .mp4 or .gif, got {args.video}")
    with DDPG.load(args.run_dir, checkpoint=args.checkpoint) as agent:
        result = agent.evaluate(args.episodes, args.seed, video_path=args.video)
    if args.json:
        out = result.to_json()
        print(json.dumps({k: out[k] for k in ("mean_return", "std_return", "episodes", "info_means")}))
    else:
        print(f"{result.mean_return:.2f} ± {result.std_return:.2f} over {len(result.returns)} episodes")
        if args.video:
            print(f"video: {args.video}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ddpg.run.plots import training_figure

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


def cmd_resume(args: argparse.Namespace) -> int:
    from ddpg.run.agent import DDPG

    if not args.run_dir.is_dir():
        raise UsageError(f"run directory {args.run_dir} does not exist")
    with DDPG.resume(args.run_dir, total_steps=args.steps) as agent:
        # killed after its final checkpoint, before its summary
        if agent.step >= agent.config.loop.total_steps:
            agent.finish(args.run_dir)
            wrote = "wrote summary.json and plots/training.png"
            print(f"{args.run_dir} had trained all {agent.step} steps; {wrote}")
            return 0
        print(f"resuming {args.run_dir} at step {agent.step} of {agent.config.loop.total_steps}", flush=True)
        _report(agent.learn(run_dir=args.run_dir), agent.config.logging.eval_episodes, args.run_dir)
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from ddpg.experiments import sweep

    if args.cpus_per_trial is not None and not args.cpus_per_trial > 0:
        raise UsageError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    if args.resume is not None:
        given = [f"--{n}" for n in ("env", "preset", "grid", "seeds", "steps", "out", "set")]
        values = (args.env, args.preset, args.grid, args.seeds, args.steps, args.out, args.overrides)
        clash = [n for n, v in zip(given, values) if v]
        if clash:
            raise UsageError(f"--resume reads the spec from DIR/sweep.yaml; drop {', '.join(clash)}")
        directory = args.resume
        spec = sweep.SweepSpec.load(directory / sweep.SPEC_FILE)
        if args.cpus_per_trial is not None:  # may change on resume; kept for this session only
            spec = dataclasses.replace(spec, cpus_per_trial=args.cpus_per_trial)
        trials = sweep.plan(spec)
    else:
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
        trials = sweep.prepare(spec, directory)
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
        print(f"{rank:3d}. {s.label}: final eval {s.final.mean:.1f} [{s.final.low:.1f}, {s.final.high:.1f}]")
    for failure in summary.failed:
        print(f"failed: {failure.trial.name}: {failure.error}", file=sys.stderr)
    if summary.failed:
        print(f"to re-run the failed and unfinished trials: ddpg sweep --resume {directory}", file=sys.stderr)
    print(f"results: {directory / 'results.csv'}, {directory / 'summary.md'}, {directory / 'comparison.png'}")
    return 1 if summary.failed else 0


def cmd_envs(args: argparse.Namespace) -> int:
    from ddpg.config import flatten, load_preset, preset_names
    from ddpg.envs import registered_ids

    print("presets (ddpg train --preset NAME; chosen automatically by --env ID):")
    for name in preset_names():
        env_id = flatten(load_preset(name)).get("env_id", "")
        print(f"  {name:32s} {env_id}")
    print("ddpg's own environments:")
    for env_id in registered_ids():
        print(f"  {env_id}")
    print("any other Gymnasium id with a Box action space, or package.module:ClassName, works too")
    return 0


def _one_line(text: str) -> str:
    # Messages quote user input, which may hold newlines or other line-breaking characters.
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def cmd_bench_replay(args: argparse.Namespace) -> int:
    from ddpg.bench_replay import bench_replay, parse_frame_shape

    try:
        shape = parse_frame_shape(args.frame_shape)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.batch_size > args.transitions:
        raise UsageError(
            f"--batch-size ({args.batch_size}) must not exceed --transitions ({args.transitions})"
        )
    result = bench_replay(shape, args.frame_stack, args.transitions, args.batch_size, args.episode_length)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        h, w, c = result.frame_shape
        print(
            f"frames {h}x{w}x{c}, stack {result.frame_stack}, {result.transitions} transitions: "
            f"{result.bytes_per_transition:,.0f} bytes per transition "
            f"({result.frames_per_transition:.3f} frames; "
            f"naive layout {result.naive_bytes_per_transition:,.0f})"
        )
        print(f"sampling: {result.stacks_per_second:,.0f} stacks/s in batches of {result.batch_size}")
    return 0


def cmd_lane_reference(args: argparse.Namespace) -> int:
    from ddpg.config import parse_override
    from ddpg.envs.lane_following import reference

    kwargs = {}
    for text in args.overrides:
        path, value = parse_override(text)
        if len(path) != 2 or path[0] != "env":
            raise UsageError(f"--set expects env.KEY=VALUE, got {text!r}")
        kwargs[path[1]] = value
    try:
        result = reference(episodes=args.episodes, seed=args.seed, **kwargs)
    except TypeError as e:
        raise UsageError(f"--set: {e}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result))
    else:
        for i, (d, n, off) in enumerate(
            zip(result["distance_travelled"], result["steps"], result["left_road"])
        ):
            print(f"episode {i}: {d:.2f} m in {n} steps{' (left the road)' if off else ''}")
        print(f"mean {result['mean']:.2f} ± {result['std']:.2f} m over {result['episodes']} episodes")
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,64, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 64,64, got {text!r}")
    return sizes


def _bench_reporter(json_mode: bool):
    # With --json, stdout carries only the JSON; progress goes to stderr.
    stream = sys.stderr if json_mode else sys.stdout
    return lambda message: print(message, file=stream, flush=True)


def cmd_bench_speed(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ddpg.bench_speed import BenchError, SpeedSettings, require_sb3, run_speed

    try:
        require_sb3()
    except BenchError as e:
        raise UsageError(str(e)) from None
    compile = {"true": True, "false": False}.get(args.compile, "auto")
    settings = SpeedSettings(
        hidden_sizes=tuple(args.arch),
        steps=args.steps,
        rounds=args.rounds,
        threads=args.threads,
        compile=compile,
    )
    result = run_speed(settings, report=_bench_reporter(args.json))
    summary = result.summary()
    if args.json:
        print(json.dumps({**asdict(result), "summary": summary}))
    else:
        print(
            f"median: ddpg {summary['ddpg_median']:.0f} steps/s, SB3 {summary['sb3_median']:.0f} steps/s, "
            f"ratio ×{summary['ratio_median']:.2f} "
            f"(rounds ×{summary['ratio_min']:.2f}–×{summary['ratio_max']:.2f})"
        )
    return 0


def cmd_bench_solve(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ddpg.bench_speed import BenchError, SolveSettings, require_sb3, run_solve
    from ddpg.config import load_preset

    try:
        require_sb3()
    except BenchError as e:
        raise UsageError(str(e)) from None
    load_preset(args.preset)  # a bad preset is a one-line error before anything runs
    settings = SolveSettings(
        seeds=args.seeds, max_steps=args.max_steps, threads=args.threads, preset=args.preset
    )
    result = run_solve(settings, report=_bench_reporter(args.json))
    summary = result.summary()
    if args.json:
        print(json.dumps({**asdict(result), "summary": summary}))
    else:
        for lib in ("ddpg", "sb3"):
            s = summary[lib]
            print(
                f"{lib}: median {s['median_seconds']:.1f} s, {s['median_steps']} steps "
                f"({s['solved']}/{s['runs']} solved)"
            )
        if summary["speedup_median"] is not None:
            print(f"ddpg solves ×{summary['speedup_median']:.2f} faster (median wall-clock)")
    return 0


def _track(spec: str):
    """A slot-car track for `--track`; the env's ValueError names the problem, the user needs the option."""
    from ddpg.envs.slot_car import make_track

    try:
        return make_track(spec)
    except ValueError as e:
        raise UsageError(f"--track {spec}: {str(e).removeprefix('track: ')}") from None


def _strict_json(x):
    """JSON has no Infinity: a lap never completed is null."""
    if isinstance(x, dict):
        return {k: _strict_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strict_json(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def cmd_slotcar_reference(args: argparse.Namespace) -> int:
    from ddpg.envs.slot_car.reference import reference

    ref = reference(_track(args.track))
    const, opt = ref["constant_throttle"], ref["optimal"]
    if args.json:
        print(json.dumps(_strict_json(ref), allow_nan=False))
        return 0
    print(f"track {ref['track']} ({ref['length_m']:.2f} m), flying laps:")
    print(f"  best constant throttle {const['throttle']:.3f}: {const['lap_time']:.3f} s")
    print(f"  optimal speed profile:        {opt['lap_time']:.3f} s")
    print(f"  ratio constant / optimal:     {ref['ratio']:.3f}")
    return 0


def cmd_slotcar_profile(args: argparse.Namespace) -> int:
    from ddpg.config import load_config
    from ddpg.envs.slot_car import ENV_ID, make_track
    from ddpg.envs.slot_car.physics import car_params
    from ddpg.envs.slot_car.reference import optimal_profile, plot_profile, record_best_lap
    from ddpg.run.agent import DDPG

    _require_run(args.run_dir)
    config_file = args.run_dir / "config.yaml"
    if config_file.is_file() and load_config(config_file).environment.id != ENV_ID:
        raise UsageError(f"{args.run_dir} is not a {ENV_ID} run")
    out = args.out or args.run_dir / "plots" / "slotcar_profile.png"
    agent = DDPG.load(args.run_dir)
    laps = {"max_laps": 5, "max_time_s": 60.0, "on_crash": "terminate", "random_start": False}
    kwargs = {**agent.config.environment.kwargs, **laps}
    if args.track is not None:
        kwargs["track"] = _track(args.track)
    track = make_track(kwargs.get("track", "oval"))
    lap = record_best_lap(agent.act, kwargs)
    with atomic_file(out) as tmp:
        plot_profile(tmp, track, kwargs.get("physics"), lap.s, lap.v)
    opt = optimal_profile(track, car_params(kwargs.get("physics")))["lap_time"]
    if math.isfinite(lap.lap_time):
        print(f"best lap {lap.lap_time:.3f} s ({lap.lap_time / opt:.3f} x optimal {opt:.3f} s)")
    else:
        print(f"no lap completed (ended at {lap.s[-1] if lap.s else 0.0:.2f} m); optimal {opt:.3f} s")
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except USER_ERRORS as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from ddpg.run.agent import TrainingDiverged

        if not isinstance(e, TrainingDiverged):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
