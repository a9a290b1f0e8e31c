"""Time of one pixel update (`Learner.update`) as the encoder computes it now against how it did before,
at a pixel preset's shapes, in one process, the variants taking turns block after block so that load on a
shared machine hits them alike.

    python bench/pixel_update.py                           # Duckietown-v0: 3x120x160 frames, batch 32
    python bench/pixel_update.py --env LaneFollowing-v0 --frames 9,32,32

The variants: frames as stored (channels first) and every encoding computed (before); channels-last
frames, every encoding computed; channels-last frames with an update's repeated encodings computed once
(now: s' for the target actor and target critic, s for the actor's loss, when they share the encoder).
All start from the same weights and update on the same batches; the script prints the median ms per
update over the blocks, its range, the speed-up, and how far the critics' weights drifted from the first
variant's (channels-last convolutions sum in another order, so they differ in the last bits; reusing an
encoding changes nothing, tests/run/test_pixels.py checks it bit for bit).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime

import torch

from ddpg.agent.learner import Learner, TensorBatch
from ddpg.agent.networks import ConvEncoder, build_networks
from ddpg.config import resolve


class _ChannelsFirst(ConvEncoder):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.convs(obs.float() / 255.0)


def _learner(env: str, frames: tuple[int, ...], action_dim: int, variant: str) -> Learner:
    config = resolve(env)
    torch.manual_seed(0)
    actor, critic = build_networks(frames, action_dim, config)
    for module in [*actor.modules(), *critic.modules()]:
        if isinstance(module, ConvEncoder) and variant == FIRST:
            module.__class__ = _ChannelsFirst
        elif isinstance(module, ConvEncoder) and variant == LAST:
            module._reusable = lambda obs: False  # type: ignore[method-assign]
    return Learner(actor, critic, config.optimisation, config.algorithm)


FIRST = "channels first, every encoding (before)"
LAST = "channels last, every encoding"
NOW = "channels last, each encoding once (now)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="Duckietown-v0")
    parser.add_argument("--frames", default="3,120,160", help="C,H,W of the stacked frames")
    parser.add_argument("--actions", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="default: the preset's batch_size")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=3, help="updates per block")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = tuple(int(x) for x in args.frames.split(","))
    batch_size = args.batch or resolve(args.env).optimisation.batch_size
    g = torch.Generator().manual_seed(1)

    def frame_batch() -> torch.Tensor:
        return torch.randint(0, 256, (batch_size, *frames), dtype=torch.uint8, generator=g)

    def batch() -> TensorBatch:
        return TensorBatch(
            frame_batch(),
            torch.rand(batch_size, args.actions, generator=g) * 2 - 1,
            torch.randn(batch_size, generator=g),
            frame_batch(),
            torch.zeros(batch_size),
        )

    # A fresh batch for every update, as training samples (the same frames again would be encoded once
    # across updates whose weights did not move).
    batches = [batch() for _ in range(args.rounds * args.updates)]
    learners = {v: _learner(args.env, frames, args.actions, v) for v in (FIRST, LAST, NOW)}
    times: dict[str, list[float]] = {k: [] for k in learners}
    for r in range(args.rounds):
        block = batches[r * args.updates : (r + 1) * args.updates]
        for name, learner in learners.items():
            start = time.perf_counter()
            for b in block:
                learner.update(b)
            times[name].append((time.perf_counter() - start) / args.updates * 1000)
    print(
        f"{args.env}, frames {frames}, batch {batch_size}, {args.rounds} blocks of {args.updates} updates, "
        f"one thread, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}"
    )
    print("| update | ms per update, median (range) | faster | critic drift |\n|---|---|---|---|")
    base = statistics.median(times[FIRST])
    first = learners[FIRST].critic.state_dict()
    for name, ts in times.items():
        median = statistics.median(ts)
        weights = learners[name].critic.state_dict()
        drift = max((first[k] - weights[k]).abs().max().item() for k in first)
        print(f"| {name} | {median:.1f} ({min(ts):.1f}–{max(ts):.1f}) | ×{base / median:.2f} | {drift:.1e} |")


if __name__ == "__main__":
    main()
