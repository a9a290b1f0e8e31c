"""`ddpg bench replay`: memory per transition and sampling rate of the frame replay buffer.

Bytes are measured from the arrays the buffer actually allocated; the naive layout (obs and next_obs
as full stacks) is reported beside it for comparison.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ddpg.data.replay import FrameReplayBuffer


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
        buffer.add(stack, action, 0.0, next_stack, False)
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
