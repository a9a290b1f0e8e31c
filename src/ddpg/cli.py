"""The `ddpg` command: thin commands over the trainer, evaluation and plots.

Every user mistake ends as one line `error: …` on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from .checkpoint import CheckpointError
from .config import ConfigError
from .envs import EnvError


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it."""


USER_ERRORS = (UsageError, ConfigError, EnvError, CheckpointError)


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
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override config fields, e.g. --set tau=0.005 hidden_sizes=[64,64]",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="run the deterministic policy of a run",
        description="Evaluate a run's latest checkpoint without noise, networks in eval mode.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
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
        type=Path,
        help="output PNG (default: RUN_DIR/plots/training.png for one run, comparison.png for several)",
    )
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("envs", help="list presets and ddpg's own environments")
    p.set_defaults(func=cmd_envs)
    return parser


# ---------------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .config import resolve
    from .trainer import DDPG, run_name

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
        raise UsageError(f"run directory {run_dir} already exists; choose another --run-dir")
    agent = DDPG(config.env_id, config)  # makes and checks the env before anything is written
    print(f"run directory: {run_dir}", flush=True)
    summary = agent.learn(run_dir=run_dir)
    mean, std = summary["final_eval_mean_return"], summary["final_eval_std_return"]
    if mean is not None:
        print(f"final evaluation: {mean:.1f} ± {std:.1f} over {config.eval_episodes} episodes")
    print(f"{summary['train_steps_per_second']:.0f} steps/s; run directory: {run_dir}")
    return 0


def _require_run(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    if not (run_dir / "checkpoints" / "latest").exists() and not (run_dir / "manifest.json").exists():
        raise UsageError(f"{run_dir} has no checkpoint (checkpoints/latest); is it a ddpg run directory?")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .envs import make_env
    from .evaluation import evaluate
    from .trainer import DDPG, EVAL_SEED_OFFSET

    _require_run(args.run_dir)
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video must end in .mp4 or .gif, got {args.video}")
    agent = DDPG.load(args.run_dir)
    c = agent.config
    env = make_env(
        c.env_id,
        c.env,
        render_mode="rgb_array" if args.video else None,
        max_episode_steps=c.max_episode_steps,
    )
    episodes = args.episodes or max(c.eval_episodes, 1)
    seed = args.seed if args.seed is not None else c.seed + EVAL_SEED_OFFSET
    result = evaluate(agent.act, env, episodes, seed, video_path=args.video)
    if args.json:
        out = result.to_json()
        print(json.dumps({k: out[k] for k in ("mean_return", "std_return", "episodes", "info_means")}))
    else:
        print(f"{result.mean_return:.2f} ± {result.std_return:.2f} over {episodes} episodes")
        if args.video:
            print(f"video: {args.video}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plots import training_figure

    for run in args.run_dirs:
        if not (run / "metrics.csv").is_file():
            raise UsageError(f"{run} is not a run directory (no metrics.csv)")
    out = args.out or (
        args.run_dirs[0] / "plots" / "training.png" if len(args.run_dirs) == 1 else Path("comparison.png")
    )
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, got {out}")
    training_figure(args.run_dirs, out)
    print(out)
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    from .config import load_preset, preset_names
    from .envs import registered_ids

    print("presets (ddpg train --preset NAME; chosen automatically by --env ID):")
    for name in preset_names():
        env_id = load_preset(name).get("env_id", "")
        print(f"  {name:32s} {env_id}")
    print("ddpg's own environments:")
    for env_id in registered_ids():
        print(f"  {env_id}")
    print("any other Gymnasium id with a Box action space, or package.module:ClassName, works too")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from .trainer import TrainingDiverged

        if not isinstance(e, TrainingDiverged):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
