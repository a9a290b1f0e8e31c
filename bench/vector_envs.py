"""Vectorised collection (`n_envs`): training steps/s with several envs stepped together.

For each setting (n_envs, vectorization) the same agent configuration trains for `--steps`
transitions after a short warm-up that starts the envs (and their subprocesses); the settings take
turns round after round, so load on a shared machine hits them alike. Prints one markdown row per
setting: median steps/s over rounds and the ratio to n_envs=1.

    python bench/vector_envs.py --env BipedalWalker-v3 --steps 3000             # collection only
    python bench/vector_envs.py --env BipedalWalker-v3 --steps 3000 --updates   # with 1 update/step

Without `--updates`, `learning_starts` exceeds the run, so the loop only acts (uniformly), steps and
stores: the part of a step that vectorising speeds up. With `--updates`, one update per transition at
the preset's network sizes, as a real run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime

import torch

from ddpg import DDPG
from ddpg.config import resolve

SETTINGS = [(1, "sync"), (2, "sync"), (2, "async"), (4, "async")]


def steps_per_second(env_id: str, n_envs: int, vectorization: str, steps: int, updates: bool) -> float:
    warm = 64
    overrides = [
        f"n_envs={n_envs}",
        f"vectorization={vectorization}",
        f"total_steps={warm + steps}",
        "progress=false",
        "video=false",
        "tensorboard=false",
        "eval_episodes=0",
        "compile=false",
        f"learning_starts={warm if updates else warm + steps + 1}",
        "batch_size=64",
    ]
    agent = DDPG(config=resolve(env_id=env_id, overrides=overrides))
    agent.learn(warm)  # makes the envs (and their subprocesses) and fills the first batch
    start = time.perf_counter()
    agent.learn(warm + steps)
    elapsed = time.perf_counter() - start
    agent.close()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="BipedalWalker-v3")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", action="store_true", help="one update per transition")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rates: dict[tuple[int, str], list[float]] = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):
        for n_envs, mode in SETTINGS:
            rates[(n_envs, mode)].append(steps_per_second(args.env, n_envs, mode, args.steps, args.updates))
    base = statistics.median(rates[SETTINGS[0]])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.env}, {'1 update per transition' if args.updates else 'collection only'}, "
        f"{args.steps} steps x {args.rounds} rounds; {platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, load {load:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| n_envs | vectorization | steps/s (median) | range | vs n_envs=1 |")
    print("|---|---|---|---|---|")
    for (n_envs, mode), values in rates.items():
        median = statistics.median(values)
        spread = f"{min(values):.0f}–{max(values):.0f}"
        print(f"| {n_envs} | {mode} | {median:.0f} | {spread} | ×{median / base:.2f} |")


if __name__ == "__main__":
    main()
