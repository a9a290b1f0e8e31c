"""Evaluate every checkpoint of LaneFollowing-v0 or Duckietown-v0 pixel runs on reward-independent measures.

For each run directory and each checkpoints/step_N: distance travelled along the lane per episode,
mean |lateral offset|, mean forward speed and the fraction of episodes that left the road, over
deterministic episodes (seeds 1,000,000 + i, as `ddpg evaluate`). Prints one JSON line per checkpoint
and, with --plot, draws distance travelled against environment steps, one line per run. The scripted
reference is the first run's environment's (`ddpg lane reference` or `ddpg duckietown reference`, on its map).

Usage: PYTHONPATH=src python bench/lane_pixels.py RUN_DIR [RUN_DIR …] [--episodes 10] [--plot out.png]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ddpg.envs.duckietown.controller import reference as duckietown_reference  # noqa: E402
from ddpg.envs.lane_following import reference  # noqa: E402
from ddpg.envs.wrappers import make_wrapped_env  # noqa: E402
from ddpg.run.agent import DDPG, EVAL_SEED_OFFSET  # noqa: E402


def measure(checkpoint: Path, episodes: int) -> dict:
    agent = DDPG.load(checkpoint)
    c, e = agent.config, agent.config.environment
    env = make_wrapped_env(e.id, e.kwargs, c.observation, max_episode_steps=e.max_episode_steps)
    distances, offsets, speeds, left = [], [], [], []
    for i in range(episodes):
        obs, info = env.reset(seed=c.loop.seed + EVAL_SEED_OFFSET + i)
        done, dist, speed = False, [], []
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            dist.append(abs(info["dist"]))
            speed.append(info["speed"])
            done = terminated or truncated
        distances.append(info["distance_travelled"])
        offsets.append(float(np.mean(dist)))
        speeds.append(float(np.mean(speed)))
        left.append(bool(terminated))
    return {
        "distance_mean": float(np.mean(distances)),
        "distance_std": float(np.std(distances)),
        "abs_offset_mean": float(np.mean(offsets)),
        "speed_mean": float(np.mean(speeds)),
        "left_road": float(np.mean(left)),
    }


def wall_time_at(run: Path, step: int) -> float | None:
    with open(run / "metrics.csv", newline="") as f:
        times = [float(r["wall_time"]) for r in csv.DictReader(f) if int(r["step"]) <= step]
    return times[-1] if times else None


def scripted_reference(run: Path, episodes: int) -> dict:
    e = DDPG.load(run).config.environment
    if e.id != "Duckietown-v0":
        return reference(episodes=episodes, seed=EVAL_SEED_OFFSET)
    same = {k: v for k, v in e.kwargs.items() if k in ("map_name", "max_steps", "frame_skip", "domain_rand")}
    return duckietown_reference(episodes=episodes, seed=EVAL_SEED_OFFSET, **same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    ref = scripted_reference(args.runs[0], args.episodes)
    print(json.dumps({"reference_distance_mean": ref["mean"], "episodes": args.episodes}))
    curves = {}
    for run in args.runs:
        rows = []
        for checkpoint in sorted((run / "checkpoints").glob("step_*")):
            step = int(checkpoint.name.removeprefix("step_"))
            row = {"run": run.name, "step": step, "wall_time_s": wall_time_at(run, step)}
            row.update(measure(checkpoint, args.episodes))
            row["fraction_of_reference"] = row["distance_mean"] / ref["mean"]
            print(json.dumps(row), flush=True)
            rows.append(row)
        curves[run.name] = rows
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name, rows in curves.items():
            steps = [r["step"] for r in rows]
            mean = np.array([r["distance_mean"] for r in rows])
            std = np.array([r["distance_std"] for r in rows])
            ax.plot(steps, mean, marker="o", label=name)
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
        ax.axhline(ref["mean"], color="k", linestyle="--", label="scripted reference")
        ax.axhline(0.8 * ref["mean"], color="grey", linestyle=":", label="80% of reference")
        ax.set_xlabel("agent steps (action repeat 3)")
        ax.set_ylabel("distance travelled per episode (m)")
        ax.legend()
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
