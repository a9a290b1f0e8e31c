"""Evaluate every checkpoint of LaneFollowing-v0 or Duckietown-v0 pixel runs on reward-independent measures.

For each run directory and each checkpoints/step_N: distance travelled along the lane per episode,
mean |lateral offset|, mean forward speed, the share of steps in the right lane (the robot's centre right
of the road's centre line, `RIGHT_LANE_EDGE` metres left of the lane centre: a robot driving in the left
lane stays on the road) and the fraction of episodes that left the road, over deterministic episodes.
Every run and the scripted driver drive the same starts (seeds 1,000,000 + i; `ddpg evaluate` adds the
run's seed). The driver is the first run's environment's (`ddpg lane reference` or `ddpg duckietown
reference`, on its map), measured as the policies are; its figures are the first line printed. Prints
one JSON line per checkpoint and, with --plot, draws distance travelled against environment steps (or,
with --against wall, against the run's wall-clock time at the checkpoint's step), one line per run.

With --group-by KEY (a config field, e.g. `actors`), runs are grouped by that field's value (one group
per value, each run a seed) and a markdown table follows: per checkpoint step, the median wall time, the
IQM over seeds of the fraction of the reference's distance with its 95% stratified bootstrap CI, and the
shares of steps in the right lane and of episodes that left the road.

Usage: PYTHONPATH=src python bench/lane_pixels.py RUN_DIR [RUN_DIR …] [--episodes 10] [--plot out.png]
           [--against steps|wall] [--group-by KEY]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from ddpg.envs.duckietown.controller import ScriptedDriver  # noqa: E402
from ddpg.envs.lane_following import LaneFollowingEnv, ScriptedController  # noqa: E402
from ddpg.envs.lane_following.controller import Act, drive  # noqa: E402
from ddpg.envs.wrappers import make_wrapped_env  # noqa: E402
from ddpg.experiments.compare import (  # noqa: E402
    FEW_SEEDS,
    config_value,
    few_seeds_note,
    format_interval,
    format_value,
    iqm_interval,
    load_run,
)
from ddpg.run.agent import DDPG, EVAL_SEED_OFFSET  # noqa: E402

# The road's centre line, metres left of the right lane's centre: LaneFollowing-v0's LANE_OFFSET, and
# gym-duckietown's lane curves at 0.20 of its 0.585 m tile.
RIGHT_LANE_EDGE = {"LaneFollowing-v0": 0.12, "Duckietown-v0": 0.20 * 0.585}


def measure(checkpoint: Path, episodes: int) -> dict:
    agent = DDPG.load(checkpoint)
    c, e = agent.config, agent.config.environment
    env = make_wrapped_env(e.id, e.kwargs, c.observation, max_episode_steps=e.max_episode_steps)
    return drive_measured(env, lambda obs, _: agent.act(obs), episodes, RIGHT_LANE_EDGE[e.id])


def drive_measured(env: Any, act: Act, episodes: int, edge: float) -> dict:
    """`drive` from seeds 1,000,000 + i, the same starts for every run and for the scripted driver, with
    the offset and speed of every step summarised per episode."""
    poses: list[tuple[float, float]] = []
    result = drive(
        env, act, episodes, EVAL_SEED_OFFSET, lambda info: poses.append((info["dist"], info["speed"]))
    )
    per_episode = np.split(np.array(poses), np.cumsum(result["steps"])[:-1])
    return {
        "distance_mean": result["mean"],
        "distance_std": result["std"],
        "abs_offset_mean": float(np.mean([np.abs(p[:, 0]).mean() for p in per_episode])),
        "speed_mean": float(np.mean([p[:, 1].mean() for p in per_episode])),
        "right_lane": float(np.mean([(p[:, 0] < edge).mean() for p in per_episode])),
        "left_road": float(np.mean(result["left_road"])),
    }


def wall_time_at(run: Path, step: int) -> float | None:
    with open(run / "metrics.csv", newline="") as f:
        times = [float(r["wall_time"]) for r in csv.DictReader(f) if int(r["step"]) <= step]
    return times[-1] if times else 0.0 if step == 0 else None


def scripted_reference(run: Path, episodes: int) -> dict:
    """The scripted driver of the run's env (its map and episode length), measured as a policy is."""
    e = DDPG.load(run).config.environment
    if e.id != "Duckietown-v0":
        env: Any = LaneFollowingEnv(**{k: v for k, v in e.kwargs.items() if k in ("map_name", "max_steps")})
        controller: Callable[[Mapping[str, Any]], np.ndarray] = ScriptedController(robot=env.robot)
    else:
        from ddpg.envs.duckietown.env import DuckietownEnv  # imports the simulator

        same = ("map_name", "max_steps", "frame_skip", "domain_rand")
        env = DuckietownEnv(**{k: v for k, v in e.kwargs.items() if k in same})
        controller = ScriptedDriver()
    return drive_measured(env, lambda _, info: controller(info), episodes, RIGHT_LANE_EDGE[e.id])


def group_table(curves: dict[str, list[dict]], groups: dict[str, str], key: str) -> str:
    """Per group and checkpoint step: median wall time, IQM [95% CI] of the percentage of the reference,
    and over the runs' episodes the share of steps in the right lane and of episodes that left the road."""
    lines = [
        f"| {key} | step | runs | wall time, s (median) | % of the reference's distance, IQM [95% CI] "
        "| steps in the right lane | episodes that left the road |",
        "|---|---|---|---|---|---|---|",
    ]
    for value in sorted(set(groups.values()), key=str):
        runs = [name for name in curves if groups[name] == value]
        for step in sorted({r["step"] for name in runs for r in curves[name]}):
            rows = [r for name in runs for r in curves[name] if r["step"] == step]
            walls = [r["wall_time_s"] for r in rows if r["wall_time_s"] is not None]
            wall = f"{statistics.median(walls):.0f}" if walls else "-"
            fraction = format_interval(iqm_interval([100 * r["fraction_of_reference"] for r in rows]))
            lane, left = (np.mean([r[k] for r in rows]) for k in ("right_lane", "left_road"))
            cells = [value, step, len(rows), wall, fraction, f"{lane:.0%}", f"{left:.0%}"]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    if any(list(groups.values()).count(v) < FEW_SEEDS for v in set(groups.values())):
        lines += ["", few_seeds_note(sorted({f"{key}={v}" for v in groups.values()}))]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--against", choices=("steps", "wall"), default="steps")
    parser.add_argument("--group-by", metavar="KEY")
    args = parser.parse_args()
    ref = scripted_reference(args.runs[0], args.episodes)
    print(json.dumps({"reference": ref, "episodes": args.episodes}))
    curves, groups = {}, {}
    for run in args.runs:
        rows = []
        for checkpoint in sorted((run / "checkpoints").glob("step_*")):
            step = int(checkpoint.name.removeprefix("step_"))
            row = {"run": run.name, "step": step, "wall_time_s": wall_time_at(run, step)}
            row.update(measure(checkpoint, args.episodes))
            row["fraction_of_reference"] = row["distance_mean"] / ref["distance_mean"]
            print(json.dumps(row), flush=True)
            rows.append(row)
        curves[run.name] = rows
        if args.group_by:
            groups[run.name] = format_value(config_value(load_run(run).config, args.group_by))
    if args.group_by:
        print(group_table(curves, groups, args.group_by))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        colours = {v: f"C{i}" for i, v in enumerate(sorted(set(groups.values()), key=str))}
        for name, rows in curves.items():
            rows = [r for r in rows if args.against == "steps" or r["wall_time_s"] is not None]
            xs = [r["step"] if args.against == "steps" else r["wall_time_s"] for r in rows]
            mean = np.array([r["distance_mean"] for r in rows])
            if name in groups:  # one colour per group, a line per seed
                label = f"{args.group_by}={groups[name]}"
                shown = label not in ax.get_legend_handles_labels()[1]
                ax.plot(xs, mean, marker="o", color=colours[groups[name]], label=label if shown else None)
                continue
            std = np.array([r["distance_std"] for r in rows])
            ax.plot(xs, mean, marker="o", label=name)
            ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
        ax.axhline(ref["distance_mean"], color="k", linestyle="--", label="scripted reference")
        ax.axhline(0.8 * ref["distance_mean"], color="grey", linestyle=":", label="80% of reference")
        ax.set_xlabel("agent steps (action repeat 3)" if args.against == "steps" else "wall-clock time (s)")
        ax.set_ylabel("distance travelled per episode (m)")
        ax.legend()
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
