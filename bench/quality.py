"""Quality benchmark: train presets over several seeds and record final evaluations.

    python bench/quality.py                       # Pendulum-v1, 5 seeds, 10 000 steps
    python bench/quality.py --env MountainCarContinuous-v0 --steps 50000 --seeds 3

Writes the table between the `quality` markers of docs/BENCHMARKS.md (machine, date, median and spread)
and the raw per-seed results to bench/results/quality-<env>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from ddpg import DDPG
from ddpg.config import resolve
from ddpg.run.logs import read_csv

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def run_seed(env_id: str, steps: int, seed: int, out: Path, threshold: float | None) -> dict:
    config = resolve(env_id=env_id, seed=seed, overrides=["progress=false", "video=false"], total_steps=steps)
    run = out / f"{env_id}-s{seed}"
    started = time.perf_counter()
    summary = DDPG(config=config).learn(run_dir=run)
    evals = read_csv(run / "eval.csv")
    first_solved = next(
        (
            int(s)
            for s, r in zip(evals["step"], evals["mean_return"])
            if threshold is not None and r >= threshold
        ),
        None,
    )
    return {
        "seed": seed,
        "final": summary["final_eval_mean_return"],
        "best": max(evals["mean_return"]),
        "first_step_at_threshold": first_solved,
        "wall_s": time.perf_counter() - started,
        "steps_per_s": summary["train_steps_per_second"],
    }


def table(env_id: str, steps: int, results: list[dict], threshold: float | None) -> str:
    finals = [r["final"] for r in results]
    solved = [r["first_step_at_threshold"] for r in results if r["first_step_at_threshold"] is not None]
    lines = [
        f"### {env_id}, {steps} steps, {len(results)} seeds ({date.today().isoformat()})",
        "",
        f"Machine: {machine()}.",
        "",
        "| seed | final eval | best eval | first eval ≥ threshold at step | wall time (s) | train steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['seed']} | {r['final']:.1f} | {r['best']:.1f} | {r['first_step_at_threshold']} | "
            f"{r['wall_s']:.0f} | {r['steps_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Median final eval **{statistics.median(finals):.1f}** (min {min(finals):.1f}, "
        f"max {max(finals):.1f}); threshold {threshold}: reached by {len(solved)}/{len(results)} seeds"
        + (f", median first step {statistics.median(solved):.0f}." if solved else "."),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=-200.0, help="eval return that counts as solved")
    parser.add_argument("--out", type=Path, default=Path("runs") / "bench-quality")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/BENCHMARKS.md")
    args = parser.parse_args()

    results = []
    for seed in range(args.seeds):
        results.append(run_seed(args.env, args.steps, seed, args.out, args.threshold))
        print(json.dumps(results[-1]), flush=True)
    text = table(args.env, args.steps, results, args.threshold)
    print(text)
    raw = ROOT / "bench" / "results" / f"quality-{args.env}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(
        json.dumps(
            {
                "env": args.env,
                "steps": args.steps,
                "machine": machine(),
                "date": date.today().isoformat(),
                "results": results,
            },
            indent=1,
        )
    )
    if not args.no_docs:
        update_docs(ROOT / "docs" / "BENCHMARKS.md", args.env, text)
    return 0


def update_docs(doc: Path, env_id: str, text: str) -> None:
    """Replace this env's section between its markers, or append one."""
    start, end = f"<!-- quality:{env_id}:start -->", f"<!-- quality:{env_id}:end -->"
    current = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    updated = (
        pattern.sub(lambda _: block, current)
        if pattern.search(current)
        else f"{current.rstrip()}\n\n{block}\n"
    )
    doc.write_text(updated)


if __name__ == "__main__":
    sys.exit(main())
