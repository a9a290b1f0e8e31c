"""Training steps/s of each update path, env by env, in one process: the paths take turns round after
round, so load on a shared machine hits them alike.

    python bench/paths.py                                    # the default envs, 5 rounds of 200 steps
    python bench/paths.py --env InvertedPendulum-v5 --rounds 3 --steps 300
    python bench/paths.py --compiled                         # adds the compiled update (compiles per env)

Paths: the reference (`Learner.update`); the hand-written update uncompiled with every product on
`F.linear`, and with oneDNN for products of 128+ (the static rule before the update was timed); and
`compile: auto` for a short run, which times those three on the run's batch shapes and takes one
(printed beside it). `--compiled` adds the hand-written update compiled, on the library `auto` chose.

Each env trains with its preset when there is one (network sizes, batch, action layer, n-step), and
otherwise with ddpg's defaults at [256, 256] and batch 256 (the setting of the InvertedPendulum cliff:
the action enters the critic's second layer). Updates start after one batch of steps (learning_starts
= batch_size), the buffer holds 20 000 transitions, no evaluation. A round is `--steps` environment
steps with one update each, timed as `DDPG.learn` runs them (acting, stepping, storing, sampling and
updating). Prints one markdown table per env: median steps/s over the rounds, the range, and the median
over rounds of each path's ratio to the reference's rate in the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from ddpg import DDPG
from ddpg.agent.fast.backward import MatMul
from ddpg.agent.fast.choice import UpdateChoice
from ddpg.agent.fast.update import FastActor, FastUpdate
from ddpg.config import preset_names, resolve

ENVS = [
    "Pendulum-v1",
    "Hopper-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "HalfCheetah-v5",
    "Walker2d-v5",
    "LunarLanderContinuous-v3",
    "BipedalWalker-v3",
]
NO_PRESET = ["hidden_sizes=[256,256]", "batch_size=256"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def make_agent(env_id: str) -> DDPG:
    overrides = [] if env_id in preset_names() else list(NO_PRESET)
    config = resolve(env_id, overrides=overrides)
    overrides += [
        f"learning_starts={config.batch_size}",
        "buffer_size=20000",
        "eval_episodes=0",
        "progress=false",
        "video=false",
        "total_steps=10000000",
    ]
    return DDPG(env_id, resolve(env_id, overrides=overrides))


def forced(agent: DDPG, path: str, update) -> DDPG:
    # What choose_update would return for that path, without its timing or its rule.
    agent.update_choice = UpdateChoice(update, path, "bench/paths.py", FastActor(agent.learner))
    return agent


def agents(env_id: str, compiled: bool) -> dict[str, DDPG]:
    out = {}
    a = make_agent(env_id)
    out["reference"] = forced(a, "eager", a.learner.update)
    a = make_agent(env_id)
    out["hand-written, F.linear"] = forced(a, "manual", FastUpdate(a.learner, compile=False, matmul=MatMul()))
    a = make_agent(env_id)
    update = FastUpdate(a.learner, compile=False, matmul=MatMul(onednn=True))
    out["hand-written, oneDNN 128+"] = forced(a, "manual", update)
    out["auto (timed choice)"] = make_agent(env_id)  # chooses in its first learn()
    if compiled:
        out["compiled"] = make_agent(env_id)  # set up once auto has chosen the library
    return out


def describe(choice: UpdateChoice) -> str:
    update = choice.update
    if isinstance(update, FastUpdate):
        return f"{choice.path}, {'oneDNN' if update.matmul.onednn else 'F.linear'}"
    return choice.path


def bench_env(env_id: str, args: argparse.Namespace) -> None:
    runs = agents(env_id, args.compiled)
    notes = {}
    for name, agent in runs.items():
        if name == "compiled":
            chosen = runs["auto (timed choice)"].update_choice.update
            matmul = chosen.matmul if isinstance(chosen, FastUpdate) else MatMul(onednn=True)
            forced(agent, "compiled", FastUpdate(agent.learner, compile=True, matmul=matmul))
        t0 = time.perf_counter()
        agent.learn(agent.config.learning_starts + args.warmup)  # fills a batch, first updates, compiles
        notes[name] = f"warm-up {time.perf_counter() - t0:.1f} s"
    notes["auto (timed choice)"] += f"; took {describe(runs['auto (timed choice)'].update_choice)}"
    if args.compiled:
        notes["compiled"] += f", {describe(runs['compiled'].update_choice)}"
    rates: dict[str, list[float]] = {name: [] for name in runs}
    loads = []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        names = list(runs)
        for name in names[r % len(names) :] + names[: r % len(names)]:  # who goes first rotates
            agent = runs[name]
            t0 = time.perf_counter()
            agent.learn(agent.step + args.steps)
            rates[name].append(args.steps / (time.perf_counter() - t0))
    c = runs["reference"].config
    timings = runs["auto (timed choice)"].update_choice.timings or {}
    print(
        f"\n### {env_id}: {c.hidden_sizes}, batch {c.batch_size}, action_layer {c.action_layer}, "
        f"{c.algo}{f', {c.n_step}-step' if c.n_step > 1 else ''} "
        f"({datetime.now(UTC):%H:%M} UTC, load {min(loads):.1f}–{max(loads):.1f})\n"
    )
    print("| path | steps/s, median | range | × reference | note |")
    print("|---|---|---|---|---|")
    for name, rs in rates.items():
        ratio = statistics.median(x / ref for x, ref in zip(rs, rates["reference"]))
        print(
            f"| {name} | {statistics.median(rs):.0f} | {min(rs):.0f}–{max(rs):.0f} | ×{ratio:.2f} "
            f"| {notes[name]} |"
        )
    if timings:
        figures = ", ".join(f"{k} {v * 1e3:.2f}" for k, v in timings.items())
        print(f"\nauto's timings, ms per update: {figures}")
    for agent in runs.values():
        agent.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help=f"default: {', '.join(ENVS)}")
    parser.add_argument("--steps", type=int, default=200, help="environment steps (and updates) per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20, help="updates before the timed rounds")
    parser.add_argument("--compiled", action="store_true", help="add the compiled hand-written update")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}; "
        f"{args.rounds} rounds of {args.steps} steps"
    )
    for env_id in args.env or ENVS:
        bench_env(env_id, args)


if __name__ == "__main__":
    main()
