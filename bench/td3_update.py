"""Update rate of TD3 (and DDPG) by path: the reference `Learner.update` against the hand-written
`FastUpdate`, uncompiled and compiled, in one process, the variants taking turns block after block so
that load on a shared machine hits them alike.

    python bench/td3_update.py                                  # [256, 256] and [400, 300], batch 256
    python bench/td3_update.py --baseline OLD_FAST.py           # adds DDPG compiled by another fast.py
    python bench/td3_update.py --layer-norm                     # adds DDPG with layer_norm (DDPG+LN)
    python bench/td3_update.py --td7 --arch 256,256             # adds TD7's reference and fast updates

Shapes are those of the presets the sizes come from: Hopper-v5 (11 observations, 3 actions) at
[256, 256], BipedalWalker-v3 (24, 4) at [400, 300], the action entering with the state. TD3 is
twin critics, σ 0.2 clipped at 0.5, policy delay 2, so a TD3 update's time is the mean of a critic-only
update and a full one. `--baseline` loads another version of `src/ddpg/fast.py` (e.g. from
`git show REV:src/ddpg/fast.py`) to time its compiled DDPG update beside this one's.
`--td7` adds TD7's update at [256, 256] with the paper's encoders (z 256 wide, encoder layers of 256),
LAP's loss, hard target updates every 250: the reference `TD7Learner.update` and the fast
`FastTD7Update`, uncompiled and compiled; the TD7 rows' ratio column compares them with TD3's reference.
Before timing, `--td7` checks the compiled TD7 update against its reference at these sizes (12 updates
from the same weights, batches and draws, a hard target update among them) and stops if they differ:
the suite's compiled TD7 tests are marked slow, as compiling TD7's graphs cold takes minutes.
Prints one markdown row per variant: median ms per update over the blocks, its range, and the ratio to
the reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import torch

import ddpg
from ddpg.agent.fast.td7 import FastTD7Update
from ddpg.agent.fast.update import FastUpdate
from ddpg.agent.learner import Learner, TensorBatch
from ddpg.agent.networks import Actor, Critic, CriticEnsemble
from ddpg.agent.sale import build_sale_networks
from ddpg.agent.td7 import TD7Learner
from ddpg.config import AlgorithmConfig, Config, OptimisationConfig

SHAPES = {(256, 256): (11, 3), (400, 300): (24, 4)}


def make_learner(sizes: tuple[int, int], td3: bool, layer_norm: bool = False) -> Learner:
    obs, act = SHAPES[sizes]
    torch.manual_seed(0)

    def critic() -> Critic:
        return Critic(obs, act, list(sizes), action_layer=0, layer_norm=layer_norm)

    optimisation = OptimisationConfig(gamma=0.99, tau=0.005, actor_lr=1e-3, critic_lr=1e-3)
    algorithm = AlgorithmConfig.of("td3" if td3 else "ddpg")  # TD3: σ 0.2 clipped at 0.5, delay 2
    actor = Actor(obs, act, list(sizes), layer_norm=layer_norm)
    return Learner(actor, CriticEnsemble([critic(), critic()]) if td3 else critic(), optimisation, algorithm)


def make_td7_learner(sizes: tuple[int, int], target_update_every: int = 250) -> TD7Learner:
    obs, act = SHAPES[sizes]
    torch.manual_seed(0)
    # The paper's encoders, ELU, lrs 3e-4.
    config = Config(algo="td7", hidden_sizes=list(sizes), target_update_every=target_update_every)
    actor, critic, encoder = build_sale_networks((obs,), act, config)
    return TD7Learner(actor, critic, encoder, config.optimisation, config.algorithm)


def batches(sizes: tuple[int, int], batch_size: int, count: int = 4) -> list[TensorBatch]:
    obs, act = SHAPES[sizes]
    gen = torch.Generator().manual_seed(0)
    return [
        TensorBatch(
            torch.randn(batch_size, obs, generator=gen),
            torch.rand(batch_size, act, generator=gen) * 2 - 1,
            torch.randn(batch_size, generator=gen),
            torch.randn(batch_size, obs, generator=gen),
            (torch.rand(batch_size, generator=gen) < 0.05).float(),
        )
        for _ in range(count)
    ]


def variants(
    sizes: tuple[int, int], baseline: str | None, layer_norm: bool = False, td7: bool = False
) -> dict[str, Callable[[TensorBatch], object]]:
    out: dict[str, Callable[[TensorBatch], object]] = {}
    if td7:
        out["TD7 reference"] = make_td7_learner(sizes).update
        out["TD7 fast, uncompiled"] = FastTD7Update(make_td7_learner(sizes), compile=False)
        out["TD7 fast, compiled"] = FastTD7Update(make_td7_learner(sizes), compile=True)
    algos = [("TD3", True, False), ("DDPG", False, False)] + (
        [("DDPG+LN", False, True)] if layer_norm else []
    )
    for algo, td3, ln in algos:
        out[f"{algo} reference"] = make_learner(sizes, td3, ln).update
        out[f"{algo} hand-written, uncompiled"] = FastUpdate(make_learner(sizes, td3, ln), compile=False)
        out[f"{algo} hand-written, compiled"] = FastUpdate(make_learner(sizes, td3, ln), compile=True)
    if baseline:
        spec = importlib.util.spec_from_file_location("ddpg._baseline_fast", baseline)
        module = importlib.util.module_from_spec(spec)
        module.__package__ = ddpg.__name__
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        out["DDPG baseline fast.py, compiled"] = module.FastUpdate(make_learner(sizes, False), compile=True)
    return out


def td7_disagreement(sizes: tuple[int, int], data: list[TensorBatch], updates: int = 12) -> float:
    """The compiled fast TD7 update against its reference, from the same weights, batches and draws of
    the global generator: the largest |fast − reference| / (1e-5 + 1e-4·|reference|) over every weight,
    buffer and Adam moment after `updates` updates, a hard target update every 5 among them; ≤ 1
    agrees (the tolerance of tests/agent/test_fast_td7.py)."""
    reference, learner = make_td7_learner(sizes, 5), make_td7_learner(sizes, 5)
    fast = FastTD7Update(learner, compile=True)
    for i in range(updates):
        for update in (reference.update, fast):
            torch.manual_seed(i)
            update(data[i % len(data)])
    pairs = [
        (a, b)
        for ma, mb in zip(learner.modules().values(), reference.modules().values())
        for a, b in zip(ma.state_dict().values(), mb.state_dict().values())
    ]
    for oa, ob in zip(learner.optimizers().values(), reference.optimizers().values()):
        sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
        pairs += [(sa[k][m], sb[k][m]) for k in sb for m in ("exp_avg", "exp_avg_sq")]
    finite = [
        (a.double(), b.double()) for a, b in pairs if torch.isfinite(b).all()
    ]  # value_range.seen starts at ±inf
    return max(((a - b).abs() / (1e-5 + 1e-4 * b.abs())).max().item() for a, b in finite)


def ms_per_update(update: Callable[[TensorBatch], object], data: list[TensorBatch], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        update(data[i % len(data)])
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["256,256", "400,300"], action="append")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=40, help="updates per timed block")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", help="another version of src/ddpg/fast.py to time beside this one")
    parser.add_argument("--layer-norm", action="store_true", help="add DDPG with layer_norm (DDPG+LN)")
    parser.add_argument("--td7", action="store_true", help="add TD7's reference and fast updates")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}"
    )
    for arch in args.arch or ["256,256", "400,300"]:
        sizes = tuple(int(x) for x in arch.split(","))
        data = batches(sizes, args.batch)
        if args.td7:
            worst = td7_disagreement(sizes, data)
            print(f"  TD7 compiled against its reference: {worst:.3f} of the tolerance", flush=True)
            if worst > 1:
                sys.exit(f"error: compiled TD7 differs from its reference ({worst:.1f}x the tolerance)")
        fns = variants(sizes, args.baseline, args.layer_norm, args.td7)
        for name, fn in fns.items():  # warm-up: compiles, creates the optimiser state
            t0 = time.perf_counter()
            ms_per_update(fn, data, 4)
            print(f"  warm-up {name}: {time.perf_counter() - t0:.1f} s", flush=True)
        times: dict[str, list[float]] = {name: [] for name in fns}
        loads = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for name, fn in fns.items():
                times[name].append(ms_per_update(fn, data, args.updates))
        print(f"\n[{arch}], {datetime.now(UTC):%H:%M} UTC, load {min(loads):.1f}–{max(loads):.1f}")
        print("| variant | ms per update, median | range | × reference (same algorithm; TD7: TD3's) |")
        print("|---|---|---|---|")
        for name, ts in times.items():
            algo = name.split()[0]
            ref = statistics.median(times[f"{'TD3' if algo == 'TD7' else algo} reference"])
            med = statistics.median(ts)
            print(f"| {name} | {med:.2f} | {min(ts):.2f}–{max(ts):.2f} | ×{ref / med:.2f} |", flush=True)
        td3 = statistics.median(times["TD3 reference"])
        for name in (n for n in times if n.startswith("TD7")):
            ratio = statistics.median(times[name]) / td3
            print(f"\n{name} takes {ratio:.2f}x the time of TD3's reference update", end="", flush=True)
        if "TD7 fast, compiled" in times:  # paired: the blocks of one round ran under the same load
            pairs = [r / f for r, f in zip(times["TD7 reference"], times["TD7 fast, compiled"])]
            print(f"\nTD7 compiled against its reference, per round: median x{statistics.median(pairs):.2f}")
        print(flush=True)


if __name__ == "__main__":
    main()
