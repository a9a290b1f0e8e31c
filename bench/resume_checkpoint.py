"""Cost of a training checkpoint and of a resume: seconds and bytes, as one JSON line.

A Pendulum agent with the preset's networks and a replay buffer filled to `--transitions`; times
`save(training_state=True)` (what `checkpoint_every` pays) and `DDPG.resume` (load, verify, replay the
current episode), median and spread over `--repeats`.

    python bench/resume_checkpoint.py --transitions 1000000 --repeats 3
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ddpg import DDPG
from ddpg.config import resolve
from ddpg.run.run_dir import RunDirectory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = resolve(
        env_id="Pendulum-v1",
        overrides=[f"buffer_size={args.transitions}", "progress=false", "video=false", "eval_episodes=0"],
    )
    agent = DDPG(config=config)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        agent.learn(10, run_dir=run)  # a collector, logs and a first checkpoint
        rng = np.random.default_rng(0)
        b = agent.buffer
        for name in ("obs", "next_obs", "action", "reward"):
            getattr(b, name)[:] = rng.standard_normal(getattr(b, name).shape)
        b.size, b.pos = b.capacity, 0
        directory = RunDirectory(run, agent.config, agent.step)
        save, load, size = [], [], 0
        for _ in range(args.repeats):
            agent.state.step += 1  # a new step_N each time (the same step is not rewritten)
            t0 = time.perf_counter()
            agent.checkpoint(directory)
            save.append(time.perf_counter() - t0)
            latest = run / "checkpoints" / "latest"
            size = sum(p.stat().st_size for p in latest.resolve().iterdir())
            t0 = time.perf_counter()
            DDPG.resume(run, total_steps=agent.step + 1)
            load.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "bench": "resume_checkpoint",
                "transitions": args.transitions,
                "checkpoint_mb": round(size / 1e6, 1),
                "save_s_median": round(statistics.median(save), 3),
                "save_s_range": [round(min(save), 3), round(max(save), 3)],
                "resume_s_median": round(statistics.median(load), 3),
                "resume_s_range": [round(min(load), 3), round(max(load), 3)],
                "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            }
        )
    )


if __name__ == "__main__":
    main()
