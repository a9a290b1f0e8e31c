"""Checks before allocating: a config that cannot run on this machine is a user error, not a traceback."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import torch

from ddpg.config import Config, ConfigError


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes this process can still allocate without swapping: Linux's MemAvailable where the system
    has /proc/meminfo, else the physical memory, else None."""
    try:
        for line in meminfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "MemAvailable":
                number, _, unit = value.strip().partition(" ")
                return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    except (OSError, ValueError):
        pass
    return physical_memory()


def replay_streams(config: Config) -> int:
    """The replay buffer's streams: one per env, with actors one per env of each actor (frames chain and
    n-step windows close within one env's episodes)."""
    return config.environment.n_envs * max(1, config.loop.actors)


def replay_bytes(
    config: Config, obs_shape: tuple[int, ...], action_dim: int, pixels: bool, capacity: int | None = None
) -> int:
    """Bytes of the arrays the replay buffer of `config` allocates at once (builder.py's `_replay`):
    a state buffer holds both observations of each transition as float32; a frame buffer each frame
    once as uint8 (about 1.05 per transition) and a few numbers per transition."""
    replay, streams = config.replay, replay_streams(config)
    n = replay.buffer_size if capacity is None else capacity
    nstep = replay.n_step > 1
    per_transition = 4 * action_dim + 4 + 4 + (4 if nstep else 0)  # action, reward, terminated, γ^k
    if pixels:
        k = config.observation.frame_stack
        stacked, height, width = obs_shape
        share = -(-n // streams)
        frame_capacity = share + math.ceil(share * 0.05) + k + replay.n_step  # FrameReplayBuffer's
        frames = streams * frame_capacity * (stacked // k) * height * width  # uint8
        per_transition += 8 * 4 + (8 if nstep else 0)  # stream, newest, first, _later; steps
        total = frames + n * per_transition
    else:
        total = n * (2 * 4 * int(np.prod(obs_shape)) + per_transition)
    if replay.prioritized:
        total += 2 * 8 * (1 << max(n - 1, 0).bit_length())  # the sum tree, float64
    return total


def check_memory(config: Config, obs_shape: tuple[int, ...], action_dim: int, pixels: bool) -> None:
    """Refuse a replay buffer larger than the memory available now, naming buffer_size, the bytes it
    needs, the bytes available and the largest buffer_size that would fit."""
    available = available_memory()
    if available is None:
        return
    need = replay_bytes(config, obs_shape, action_dim, pixels)
    if need <= available:
        return
    per_transition = replay_bytes(config, obs_shape, action_dim, pixels, capacity=1_000_000) / 1_000_000
    fits = int(available * 0.9 / per_transition)
    size = config.replay.buffer_size
    raise ConfigError(
        f"buffer_size {size} cannot fit: its replay buffer needs {_gib(need)}, and this machine has "
        f"{_gib(available)} available; lower buffer_size (--set buffer_size=N, N <= {fits} fits now) "
        "or free memory"
    )


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (a container, taskset or a
    batch scheduler may allow fewer than the machine has), else every CPU of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def torch_device(name: str) -> torch.device:
    """The device a config names; `auto` is CUDA when available, else the CPU (as Stable-Baselines3)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def torch_threads(threads: str | int) -> int:
    """Torch's intra-op threads for a config's `threads`: auto is one (docs/BENCHMARKS.md)."""
    return 1 if threads == "auto" else int(threads)


def check_resources(
    config: Config, obs_shape: tuple[int, ...], action_dim: int, pixels: bool = False
) -> None:
    """Refuse a device that does not exist and buffers or networks that cannot fit in memory."""
    name = config.loop.device
    try:
        device = torch_device(name)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device {name!r} is not a torch device ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} is not supported (cpu, cuda or mps)")
    check_memory(config, obs_shape, action_dim, pixels)
    memory = physical_memory()
    if memory is None:
        return
    net = config.networks
    # Weights, target copies, gradients and two Adam moments: six float32 copies of each network.
    params = _mlp_params([1, *net.hidden_sizes, action_dim]) + _mlp_params([1, *net.critic_sizes, 1])
    if 6 * 4 * params > memory:
        raise ConfigError(
            f"hidden_sizes {net.hidden_sizes} give over {params:.3g} parameters, "
            f"more than this machine's {memory / 2**30:.1f} GiB can hold"
        )


def _mlp_params(sizes: list[int]) -> int:
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))
