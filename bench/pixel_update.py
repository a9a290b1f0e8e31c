"""Time of one pixel update (`Learner.update`) with the encoder's channels-last frames against frames
fed as stored (channels first, what the encoder did before), at a pixel preset's shapes, in one process,
the two taking turns block after block so that load on a shared machine hits them alike.

    python bench/pixel_update.py                           # Duckietown-v0: 3x120x160 frames, batch 32
    python bench/pixel_update.py --env LaneFollowing-v0 --frames 9,32,32

Both variants start from the same weights and update on the same batches; the script prints the median ms
per update over the blocks, its range, the ratio, and how far the two critics' weights drifted apart
(the convolutions' sums are ordered differently, so the runs differ in the last bits, not in kind).
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


def _learner(env: str, frames: tuple[int, ...], action_dim: int, channels_first: bool) -> Learner:
    config = resolve(env)
    torch.manual_seed(0)
    actor, critic = build_networks(frames, action_dim, config)
    if channels_first:
        for module in list(actor.modules()) + list(critic.modules()):
            if type(module) is ConvEncoder:
                module.__class__ = _ChannelsFirst
    return Learner(actor, critic, config.optimisation, config.algorithm)


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

    batch = TensorBatch(
        frame_batch(),
        torch.rand(batch_size, args.actions, generator=g) * 2 - 1,
        torch.randn(batch_size, generator=g),
        frame_batch(),
        torch.zeros(batch_size),
    )
    learners = {
        "channels first (as stored)": _learner(args.env, frames, args.actions, True),
        "channels last (the encoder's)": _learner(args.env, frames, args.actions, False),
    }
    times: dict[str, list[float]] = {k: [] for k in learners}
    for _ in range(args.rounds):
        for name, learner in learners.items():
            start = time.perf_counter()
            for _ in range(args.updates):
                learner.update(batch)
            times[name].append((time.perf_counter() - start) / args.updates * 1000)
    print(
        f"{args.env}, frames {frames}, batch {batch_size}, {args.rounds} blocks of {args.updates} updates, "
        f"one thread, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}"
    )
    print("| frames | ms per update, median (range) | ratio |\n|---|---|---|")
    base = statistics.median(times["channels first (as stored)"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"| {name} | {median:.1f} ({min(ts):.1f}–{max(ts):.1f}) | ×{base / median:.2f} |")
    first, last = (learner.critic.state_dict() for learner in learners.values())
    drift = max((first[k] - last[k]).abs().max().item() for k in first)
    updates = args.rounds * args.updates
    print(f"largest difference between the two critics' weights after {updates} updates: {drift:.2e}")


if __name__ == "__main__":
    main()
