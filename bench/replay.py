"""Memory per transition and sampling rate of the frame replay buffer.

    python bench/replay.py [--frame-shape 64x64x3] [--frame-stack 3] [--transitions N] [--batch-size B]
                           [--episode-length L] [--json]

Fills a buffer of N transitions with random frames, then times batches of B. Bytes are measured from
the arrays the buffer actually allocated; the naive layout (obs and next_obs as full stacks) is
reported beside it for comparison. Bad input is one line `error: …` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from ddpg.cli.shared import Parser, UsageError, positive, run_command
from ddpg.data.frames import FrameReplayBuffer


@dataclass(frozen=True)
class ReplayBenchResult:
    frame_shape: tuple[int, int, int]  # (H, W, C)
    frame_stack: int
    transitions: int
    episode_length: int
    bytes_per_transition: float
    frames_per_transition: float  # bytes per transition / bytes per frame
    naive_bytes_per_transition: float  # obs and next_obs stored as full stacks
    batch_size: int
    stacks_per_second: float  # observation stacks sampled per second (obs and next_obs count as two)
    fill_transitions_per_second: float

    def to_json(self) -> dict:
        return asdict(self)


def parse_frame_shape(text: str) -> tuple[int, int, int]:
    """'64x64x3' → (64, 64, 3); 'HxW' means one channel."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--frame-shape must look like 64x64x3, got {text!r}") from None
    if len(values) == 2:
        values.append(1)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"--frame-shape must look like 64x64x3 with positive sizes, got {text!r}")
    return values[0], values[1], values[2]


def bench_replay(
    frame_shape: tuple[int, int, int],
    frame_stack: int,
    transitions: int,
    batch_size: int = 256,
    episode_length: int = 500,
    samples: int = 50,
    seed: int = 0,
) -> ReplayBenchResult:
    """Fill a full buffer of `transitions` with random frames in episodes of `episode_length`, then
    time `samples` batches of `batch_size`."""
    h, w, c = frame_shape
    k = frame_stack
    action_dim = 2
    buffer = FrameReplayBuffer(transitions, (k * c, h, w), action_dim, frame_stack=k)
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (64, c, h, w), dtype=np.uint8)  # frames drawn from a pool: cheap to make
    action = np.zeros(action_dim, np.float32)
    stack = None
    start = time.perf_counter()
    for t in range(transitions):
        if t % episode_length == 0:
            stack = np.concatenate([pool[t % 61]] * k)
        next_stack = np.concatenate([stack[c:], pool[(t * 7 + 3) % 64]])
        buffer.add(stack, action, 0.0, next_stack, False, first=t % episode_length == 0)
        stack = next_stack
    fill_rate = transitions / (time.perf_counter() - start)
    buffer.sample(batch_size, rng)  # first touch of the pages out of the timing
    start = time.perf_counter()
    for _ in range(samples):
        buffer.sample(batch_size, rng)
    elapsed = time.perf_counter() - start
    frame_bytes = h * w * c
    per_transition = buffer.nbytes / transitions
    naive = 2 * k * frame_bytes + 4 * (action_dim + 2)
    return ReplayBenchResult(
        frame_shape=(h, w, c),
        frame_stack=k,
        transitions=transitions,
        episode_length=episode_length,
        bytes_per_transition=per_transition,
        frames_per_transition=per_transition / frame_bytes,
        naive_bytes_per_transition=float(naive),
        batch_size=batch_size,
        stacks_per_second=2 * batch_size * samples / elapsed,
        fill_transitions_per_second=fill_rate,
    )


def build_parser() -> argparse.ArgumentParser:
    b = Parser(
        prog="python bench/replay.py",
        description="Fill a frame replay buffer with random frames, report the bytes per transition "
        "(from the arrays allocated) and how many stacks per second a batch of 256 samples.",
    )
    b.add_argument("--frame-shape", default="64x64x3", metavar="HxWxC", help="frame shape (default 64x64x3)")
    b.add_argument("--frame-stack", type=positive, default=3, help="frames per observation (default 3)")
    b.add_argument("--transitions", type=positive, default=100_000, help="buffer capacity, filled full")
    b.add_argument("--batch-size", type=positive, default=256, help="sampled batch size (default 256)")
    b.add_argument("--episode-length", type=positive, default=500, help="steps per episode (default 500)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_replay)
    return b


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        shape = parse_frame_shape(args.frame_shape)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.batch_size > args.transitions:
        raise UsageError(
            f"--batch-size ({args.batch_size}) must not exceed --transitions ({args.transitions})"
        )
    result = bench_replay(shape, args.frame_stack, args.transitions, args.batch_size, args.episode_length)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        h, w, c = result.frame_shape
        print(
            f"frames {h}x{w}x{c}, stack {result.frame_stack}, {result.transitions} transitions: "
            f"{result.bytes_per_transition:,.0f} bytes per transition "
            f"({result.frames_per_transition:.3f} frames; "
            f"naive layout {result.naive_bytes_per_transition:,.0f})"
        )
        print(f"sampling: {result.stacks_per_second:,.0f} stacks/s in batches of {result.batch_size}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
