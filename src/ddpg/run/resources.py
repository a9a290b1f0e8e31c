"""Checks before allocating: a config that cannot run on this machine is a user error, not a traceback."""

from __future__ import annotations

import itertools
import os

import numpy as np
import torch

from ddpg.config import Config, ConfigError


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


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


def check_resources(config: Config, obs_shape: tuple[int, ...], action_dim: int) -> None:
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
    memory = physical_memory()
    if memory is None:
        return
    # Lower bounds only: the buffer may store frames once and as bytes, the networks may start with a
    # convolutional encoder. What they refuse cannot run however it is stored; the rest is allocated
    # lazily by numpy, as before.
    buffer_size, net = config.replay.buffer_size, config.networks
    need = buffer_size * int(np.prod(obs_shape))
    if need > memory:
        raise ConfigError(
            f"buffer_size {buffer_size} cannot fit: even at one byte per observation value it needs "
            f"{need / 2**30:.1f} GiB, and this machine has {memory / 2**30:.1f} GiB"
        )
    # Weights, target copies, gradients and two Adam moments: six float32 copies of each network.
    params = _mlp_params([1, *net.hidden_sizes, action_dim]) + _mlp_params([1, *net.critic_sizes, 1])
    if 6 * 4 * params > memory:
        raise ConfigError(
            f"hidden_sizes {net.hidden_sizes} give over {params:.3g} parameters, "
            f"more than this machine's {memory / 2**30:.1f} GiB can hold"
        )


def _mlp_params(sizes: list[int]) -> int:
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))
