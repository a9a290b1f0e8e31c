"""Learning benchmarks for DDPG, TD3 and TD7 (with or without prioritized replay and n-step returns).

Runs `ddpg train` once per seed, one run at a time, then re-evaluates each run's policies on fresh
episodes and prints a markdown table. Returns are the interquartile mean (IQM) over seeds with its 95%
stratified bootstrap confidence interval, computed as sweeps and `ddpg plot --group-by` compute theirs
(`ddpg.experiments.compare`); steps, the first step at which the evaluation reached the target, and
wall time are the median and range over seeds. Under 5 seeds the table says its intervals are wide.
Figures go to docs/BENCHMARKS.md.

    python bench/algos.py run --env MountainCarContinuous-v0 --algo ddpg --target 93  # seeds 0-4
    python bench/algos.py run --env Hopper-v5 --algo td3 --steps 1000000 --target 3000 -- n_step=1
    python bench/algos.py run --env InvertedPendulum-v5 --algo ddpg --steps 30000 --preset paper
    python bench/algos.py table runs/bench/* --target 93  # summarise (and re-evaluate) runs already made
    python bench/algos.py table runs/bench/* --reevaluate 0    # training's own evaluations only
    python bench/algos.py speed                                # update rate of each switch

Everything after `--` is passed to `ddpg train --set`. The quality figure is the re-evaluation: each
checkpoint named by `--checkpoints` (default `best`, the best evaluation's policy, which `ddpg evaluate
RUN` runs and a user ships, and `latest`, the final policy) evaluated again over `--reevaluate N`
episodes (default 100) on seeds the training's evaluations never used: the training's `eval_episodes`
evaluations are noisier than the differences between seeds, and the best of them overstates its policy.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from ddpg.experiments.compare import FEW_SEEDS, few_seeds_note, format_interval, iqm_interval

# Issue #8's targets: (env, algo) -> (eval return, within steps).
TARGETS = {
    ("LunarLanderContinuous-v3", "ddpg"): (230.0, 150_000),
    ("MountainCarContinuous-v0", "ddpg"): (93.0, 100_000),
    ("BipedalWalker-v3", "td3"): (300.0, 1_000_000),
    ("Hopper-v5", "td3"): (3000.0, 1_000_000),
    ("Hopper-v5", "ddpg"): (2000.0, 1_000_000),
}


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    env_id: str
    algo: str
    seed: int
    steps: int
    final_eval: float | None
    best_eval: float | None
    first_step_at_target: int | None
    wall_time_s: float | None
    steps_per_s: float | None
    target: float | None  # the return `first_step_at_target` looked for
    reevaluated: tuple[tuple[str, float], ...] = ()  # (checkpoint, mean return) per re-evaluation
    reevaluation_episodes: int = 0


# Training evaluates on seeds from config.seed + 1_000_000 on; re-evaluations start past them.
REEVALUATION_SEED_OFFSET = 2_000_000


def reevaluate(run: RunResult, episodes: int, checkpoints: list[str]) -> RunResult:
    """`run` with each named checkpoint's mean return over `episodes` fresh deterministic episodes (a
    run without evaluations has no `best`: its cell stays empty)."""
    from ddpg import DDPG

    means = []
    for name in checkpoints:
        if not (run.run_dir / "checkpoints" / name).exists():
            continue
        with DDPG.load(run.run_dir, checkpoint=name) as agent:
            means.append((name, agent.evaluate(episodes, run.seed + REEVALUATION_SEED_OFFSET).mean_return))
    return replace(run, reevaluated=tuple(means), reevaluation_episodes=episodes)


def read_run(run_dir: Path, target: float | None) -> RunResult:
    """The run's figures; `target` None: the issue's target for the run's env and algo, if it has one."""
    config = _read_yaml(run_dir / "config.yaml")
    if target is None:
        target = TARGETS.get((config["env_id"], config.get("algo", "ddpg")), (None, None))[0]
    with (run_dir / "eval.csv").open(newline="") as f:
        evals = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    wall = summary.get("wall_time_s")
    if wall is None:  # an unfinished run: the last episode's wall time
        with (run_dir / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        wall = float(rows[-1]["wall_time"]) if rows else None
    reached = [s for s, r in evals if target is not None and r >= target]
    return RunResult(
        run_dir,
        config["env_id"],
        config.get("algo", "ddpg"),
        int(config["seed"]),
        evals[-1][0] if evals else 0,
        evals[-1][1] if evals else None,
        max((r for _, r in evals), default=None),
        reached[0] if reached else None,
        wall,
        summary.get("train_steps_per_second"),
        target,
    )


def _read_yaml(path: Path) -> dict:
    """A run's config.yaml in the flat form (the file may be nested by section, or flat from before)."""
    from ddpg.config import flatten, load_yaml

    return flatten(load_yaml(path))


def _median_range(values: list[float | None], fmt: str = "{:.1f}") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def _iqm_ci(values: list[float | None]) -> str:
    """IQM over seeds [95% CI], of the seeds that have the figure."""
    present = [v for v in values if v is not None]
    if not present:
        return "–"
    return format_interval(iqm_interval(present))


CHECKPOINT_LABELS = {"latest": "final (`checkpoints/latest`)", "best": "`checkpoints/best` (shipped)"}


def table(results: list[RunResult]) -> str:
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.env_id, r.algo), []).append(r)
    checkpoints = list(dict.fromkeys(name for r in results for name, _ in r.reevaluated))
    episodes = "/".join(
        str(n) for n in dict.fromkeys(r.reevaluation_episodes for r in results if r.reevaluated)
    )
    extra = "".join(f" {CHECKPOINT_LABELS.get(n, n)}, {episodes} fresh episodes |" for n in checkpoints)
    lines = [
        "Returns: IQM over seeds [95% stratified bootstrap CI]; steps and times: median [min, max].",
        "",
        f"| env | algo | seeds | steps | final eval | best eval | first step at target "
        f"| wall time (min) |{extra}",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(checkpoints),
    ]
    for (env_id, algo), runs in sorted(groups.items()):
        reached = [r.first_step_at_target for r in runs]
        hits = sum(x is not None for x in reached)
        goal = "/".join(f"{t:g}" for t in dict.fromkeys(r.target for r in runs if r.target is not None))
        reached_text = _median_range(reached, "{:.0f}") + f" ({hits}/{len(runs)} reached {goal or '–'})"
        lines.append(
            f"| {env_id} | {algo} | {len(runs)} | {_median_range([r.steps for r in runs], '{:.0f}')} "
            f"| {_iqm_ci([r.final_eval for r in runs])} | {_iqm_ci([r.best_eval for r in runs])} "
            f"| {reached_text} | {_median_range([(r.wall_time_s or 0) / 60 for r in runs])} |"
            + "".join(f" {_iqm_ci([dict(r.reevaluated).get(n) for r in runs])} |" for n in checkpoints)
        )
    few = [f"{env_id} {algo}" for (env_id, algo), runs in sorted(groups.items()) if len(runs) < FEW_SEEDS]
    if few:
        lines += ["", few_seeds_note(few)]
    return "\n".join(lines)


SPEED_SETTINGS = {
    "ddpg": {},
    "td3": {"algo": "td3"},
    "ddpg + prioritized": {"prioritized": True},
    "ddpg + n_step=3": {"n_step": 3},
    "td3 + prioritized + n_step=3": {"algo": "td3", "prioritized": True, "n_step": 3},
}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def update_rate(changes: dict, updates: int) -> float:
    """Rounds of sample → update (→ priority update) per second, [256, 256] networks, batch 256."""
    import time

    from ddpg import DDPG, Config
    from ddpg.run.loop import Loop

    config = Config(
        hidden_sizes=[256, 256],
        batch_size=256,
        buffer_size=100_000,
        learning_starts=10_000,
        log_every=10**9,
        eval_episodes=0,
        progress=False,
    ).replace(**changes)
    agent = DDPG(config=config)
    agent.learn(10_000)  # fills the buffer with warm-up transitions, no updates yet
    agent.state.step = config.exploration.learning_starts
    loop = Loop(agent, config.loop.total_steps, None)
    loop._train_round()  # first-call allocations out of the timing
    start = time.perf_counter()
    for _ in range(updates):
        loop._train_round()
    return updates / (time.perf_counter() - start)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides: list[str] = []
    if "--" in argv:
        overrides = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train one run per seed, then print the table")
    run.add_argument("--env", required=True)
    run.add_argument("--algo", choices=("ddpg", "td3", "td7"), default="ddpg")
    run.add_argument("--preset", help="passed to `ddpg train --preset` (default: chosen by --env)")
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    run.add_argument("--steps", type=int, help="default: the issue's budget for this env and algo")
    run.add_argument("--target", type=float, help="default: the issue's target for this env and algo")
    run.add_argument("--out", type=Path, default=Path("runs/bench"))
    speed = sub.add_parser("speed", help="sample+update rate of each switch on Pendulum-v1 shapes")
    speed.add_argument("--updates", type=int, default=500)
    tab = sub.add_parser("table", help="summarise existing run directories")
    tab.add_argument("run_dirs", type=Path, nargs="+")
    tab.add_argument("--target", type=float)
    for p in (run, tab):
        p.add_argument(
            "--reevaluate",
            type=int,
            default=100,
            metavar="N",
            help="re-evaluate each run's checkpoints over N fresh episodes (default 100; 0: do not)",
        )
        p.add_argument(
            "--checkpoints",
            nargs="+",
            default=["best", "latest"],
            metavar="NAME",
            help="the checkpoints to re-evaluate: best (what `ddpg evaluate RUN` runs), latest, step_N",
        )
    args = parser.parse_args(argv)

    if args.command == "speed":
        print(f"{machine()}, {datetime.now(UTC):%Y-%m-%d} UTC, torch threads {torch_threads()}")
        print("| setting | updates/s |\n|---|---|")
        for name, changes in SPEED_SETTINGS.items():
            print(f"| {name} | {update_rate(changes, args.updates):.0f} |")
        return 0
    if args.command == "table":
        results = [read_run(d, args.target) for d in args.run_dirs]
        if args.reevaluate:
            results = [reevaluate(r, args.reevaluate, args.checkpoints) for r in results]
        print(table(results))
        return 0

    target, budget = TARGETS.get((args.env, args.algo), (None, None))
    target = args.target if args.target is not None else target
    steps = args.steps or budget
    results = []
    for seed in args.seeds:
        run_dir = args.out / f"{args.env}_{args.algo}_s{seed}_{datetime.now():%Y%m%d-%H%M%S}"
        cmd = [sys.executable, "-m", "ddpg", "train", "--env", args.env, "--algo", args.algo]
        cmd += ["--seed", str(seed), "--run-dir", str(run_dir)]
        cmd += ["--preset", args.preset] if args.preset else []
        cmd += ["--steps", str(steps)] if steps else []
        cmd += ["--set", "progress=false", "video=false", *overrides]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        result = read_run(run_dir, target)
        results.append(reevaluate(result, args.reevaluate, args.checkpoints) if args.reevaluate else result)
    print(f"{machine()}, {datetime.now(UTC):%Y-%m-%d} UTC, torch threads 1")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
