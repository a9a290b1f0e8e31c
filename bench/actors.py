"""Experience collection by Ray actors (`actors`, docs/actors.md): total env steps/s with N actors.

    python bench/actors.py [--actors 1,2,4,8] [--seconds 15] [--sleep-ms 5] [--rounds 1]

The env's step sleeps `--sleep-ms` (I/O-like: a simulator in another process, a robot), so a 2-core
machine can show how collection scales with actors. Each actor steps one env and acts with the policy
(64×64); the learner stores every transition but runs no update (its batch size exceeds the run), so
what is measured is collection: actors, transport and storing. The rate is taken between episode ends
after the first quarter of the run (the workers' start, importing torch, is not counted). All settings
share one embedded Ray, each actor reserving 1/max(N) of a CPU. Prints one markdown row per setting:
median steps/s, the ratio to N × the 1-actor rate (target ≥ 0.8).
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
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class SleepEnv(gym.Env):
    """A 3-d observation, a 1-d action, 200-step episodes; each step sleeps `sleep_ms`."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, sleep_ms: float = 5.0) -> None:
        self.sleep_s, self.t = sleep_ms / 1000, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        time.sleep(self.sleep_s)
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return obs, -float(np.square(action).sum()), False, self.t >= 200, {}


def steps_per_second(actors: int, most: int, seconds: float, sleep_ms: float, guess: float) -> float:
    from ddpg import DDPG
    from ddpg.config import resolve

    total = int(actors * guess * seconds * 4 / 3) // 50 * 50 + 50  # the last 3/4 last about `seconds`
    overrides = [
        f"env.sleep_ms={sleep_ms}",
        f"actors={actors}",
        f"actor_cpus={1 / most}",
        f"total_steps={total}",
        f"buffer_size={2 * total}",
        f"batch_size={2 * total}",  # never sampled: no update runs
        "learning_starts=0",
        "hidden_sizes=[64,64]",
        "progress=false",
        "video=false",
        "tensorboard=false",
        "eval_episodes=0",
        "compile=false",
    ]
    marks: list[tuple[float, int]] = []

    def mark(event) -> None:
        if event.step >= total // 4:
            marks.append((time.perf_counter(), event.step))

    with DDPG("bench.actors:SleepEnv", resolve(env_id="bench.actors:SleepEnv", overrides=overrides)) as agent:
        agent.learn(callback=mark)
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) / (t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--sleep-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    counts = [int(n) for n in args.actors.split(",")]
    # The driver and Ray's workers import the env as bench.actors.
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ddpg.run.ray_session import ray_session
    from ddpg.run.resources import usable_cpus

    guess = 1000 / (args.sleep_ms + 0.3)  # one actor's steps/s, to size the runs
    rates: dict[int, list[float]] = {n: [] for n in counts}
    with ray_session(None):
        for _ in range(args.rounds):
            for n in counts:
                rates[n].append(steps_per_second(n, max(counts), args.seconds, args.sleep_ms, guess))
    base = statistics.median(rates[counts[0]]) / counts[0]
    load = os.getloadavg()
    print(
        f"SleepEnv ({args.sleep_ms} ms a step), collection only, about {args.seconds:g} s per setting x "
        f"{args.rounds} rounds; {platform.processor() or platform.machine()}, {usable_cpus()} CPUs, "
        f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| actors | env steps/s (median) | per actor | vs N × 1 actor |")
    print("|---|---|---|---|")
    for n, values in rates.items():
        median = statistics.median(values)
        print(f"| {n} | {median:.0f} | {median / n:.0f} | ×{median / (n * base):.2f} |")


if __name__ == "__main__":
    main()
