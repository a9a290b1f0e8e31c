"""Vectorised collection (`n_envs`): training steps/s with several envs stepped together.

For each setting (n_envs, vectorization) the same agent configuration trains for `--steps`
transitions after a short warm-up that starts the envs (and their subprocesses); the settings take
turns round after round, so load on a shared machine hits them alike. Prints one markdown row per
setting: median steps/s over rounds and the ratio to n_envs=1.

    python bench/vector_envs.py --env BipedalWalker-v3 --steps 3000             # collection only
    python bench/vector_envs.py --env BipedalWalker-v3 --steps 3000 --updates   # with 1 update/step
    python bench/vector_envs.py --work-ms 2 --steps 500     # Pendulum made to cost 2 ms of CPU a step

Without `--updates`, `learning_starts` exceeds the run, so the loop only acts (uniformly), steps and
stores: the part of a step that vectorising speeds up. With `--updates`, one update per transition at
the preset's network sizes, as a real run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import gymnasium as gym
import torch

from ddpg import DDPG
from ddpg.config import resolve
from ddpg.run.resources import usable_cpus

SETTINGS = [(1, "sync"), (2, "sync"), (2, "async"), (4, "async")]


class ExpensivePendulum(gym.Wrapper):
    """Pendulum-v1 whose step also burns `work_ms` of CPU: a stand-in for a costly simulator."""

    def __init__(self, work_ms: float = 2.0) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.work_s = work_ms / 1000

    def step(self, action):
        end = time.perf_counter() + self.work_s
        while time.perf_counter() < end:
            pass
        return self.env.step(action)


def steps_per_second(
    env_id: str, n_envs: int, vectorization: str, steps: int, updates: bool, env_kwargs: list[str]
) -> float:
    warm = 64
    overrides = [
        *env_kwargs,
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
    agent = DDPG(env_id, resolve(env_id=env_id, overrides=overrides))
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
    parser.add_argument("--work-ms", type=float, help="instead of --env: Pendulum costing N ms a step")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    # Every setting's total_steps must be a multiple of its n_envs: round up to one of them all.
    largest = max(n for n, _ in SETTINGS)
    args.steps = -(-args.steps // largest) * largest
    env_kwargs = []
    if args.work_ms is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # envs import it as bench.vector_envs
        args.env = "bench.vector_envs:ExpensivePendulum"
        env_kwargs = [f"env.work_ms={args.work_ms}", "max_episode_steps=200"]
    torch.set_num_threads(1)
    rates: dict[tuple[int, str], list[float]] = {s: [] for s in SETTINGS}
    for _ in range(args.rounds):
        for n_envs, mode in SETTINGS:
            rate = steps_per_second(args.env, n_envs, mode, args.steps, args.updates, env_kwargs)
            rates[(n_envs, mode)].append(rate)
    base = statistics.median(rates[SETTINGS[0]])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.env}{f' ({args.work_ms} ms a step)' if args.work_ms else ''}, "
        f"{'1 update per transition' if args.updates else 'collection only'}, "
        f"{args.steps} steps x {args.rounds} rounds; {platform.processor() or platform.machine()}, "
        f"{usable_cpus()} CPUs, load {load:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| n_envs | vectorization | steps/s (median) | range | vs n_envs=1 |")
    print("|---|---|---|---|---|")
    for (n_envs, mode), values in rates.items():
        median = statistics.median(values)
        spread = f"{min(values):.0f}–{max(values):.0f}"
        print(f"| {n_envs} | {mode} | {median:.0f} | {spread} | ×{median / base:.2f} |")


if __name__ == "__main__":
    main()
