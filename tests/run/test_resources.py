import os

import numpy as np
import pytest

from ddpg.cli import main
from ddpg.config import Config
from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.prioritized import PrioritizedReplayBuffer, SumTree
from ddpg.data.replay import ReplayBuffer
from ddpg.run import resources as guards
from tests.helpers import error_line


def test_usable_cpus_counts_the_affinity_mask_not_the_whole_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert guards.usable_cpus() == 3


def test_usable_cpus_falls_back_to_the_cpu_count_without_an_affinity_mask(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert guards.usable_cpus() == 6


def test_usable_cpus_is_one_when_the_os_cannot_count(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert guards.usable_cpus() == 1


# ---------------------------------------------------------------------------------------------------
# The replay buffer against the memory available (no test allocates a large array).


def _array_bytes(obj) -> int:
    """Bytes of every numpy array an object holds, and those of the objects it holds (a prioritized
    buffer's ring and sum tree)."""
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, ReplayBuffer | SumTree):
            total += _array_bytes(value)
    return total


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("prioritized", [False, True])
def test_replay_bytes_is_what_a_state_buffer_allocates(n_step, prioritized):
    config = Config(buffer_size=1000, n_step=n_step, prioritized=prioritized)
    ring = ReplayBuffer(1000, (5,), 2, n_step=n_step)
    buffer = PrioritizedReplayBuffer(ring, 0.6, 1e-6) if prioritized else ring
    assert guards.replay_bytes(config, (5,), 2, pixels=False) == _array_bytes(buffer)


@pytest.mark.parametrize(("n_step", "n_envs"), [(1, 1), (3, 2)])
def test_replay_bytes_is_what_a_frame_buffer_allocates(n_step, n_envs):
    config = Config(buffer_size=1000, n_step=n_step, n_envs=n_envs, total_steps=1000 * n_envs, frame_stack=3)
    buffer = FrameReplayBuffer(1000, (9, 12, 12), 2, 3, n_step=n_step, streams=n_envs)
    assert guards.replay_bytes(config, (9, 12, 12), 2, pixels=True) == buffer.nbytes


def test_available_memory_reads_memavailable_else_physical_memory(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  16000000 kB\nMemFree:  1000 kB\nMemAvailable:  8000000 kB\n")
    assert guards.available_memory(meminfo) == 8_000_000 * 1024
    monkeypatch.setattr(guards, "physical_memory", lambda: 12345)
    meminfo.write_text("MemTotal:  16000000 kB\n")  # a kernel older than MemAvailable
    assert guards.available_memory(meminfo) == 12345
    assert guards.available_memory(tmp_path / "absent") == 12345


@pytest.mark.parametrize(
    ("args", "available", "size"),
    [
        (["--env", "Pendulum-v1", "--set", "buffer_size=7000000000"], 2**36, "7000000000"),
        (["--env", "Pendulum-v1", "--set", "buffer_size=30000000"], 2**30, "30000000"),
        (["--env", "tests.helpers:PixelEnv", "--set", "buffer_size=3000000"], 2**30, "3000000"),
    ],
)
def test_a_buffer_larger_than_the_memory_available_is_one_line(
    args, available, size, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(guards, "available_memory", lambda: available)
    assert main(["train", *args, "video=false", "progress=false"]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: buffer_size {size} cannot fit: its replay buffer needs ")
    assert f"and this machine has {available / 2**30:.1f} GiB available; lower buffer_size" in line
    assert list(tmp_path.iterdir()) == []


def test_the_largest_buffer_it_suggests_fits(monkeypatch):
    monkeypatch.setattr(guards, "available_memory", lambda: 2**30)
    config = Config(buffer_size=100_000_000)
    with pytest.raises(guards.ConfigError, match=r"N <= (\d+) fits") as info:
        guards.check_memory(config, (3,), 1, pixels=False)
    fits = int(str(info.value).split("N <= ")[1].split()[0])
    guards.check_memory(Config(buffer_size=fits), (3,), 1, pixels=False)


def test_running_out_of_memory_while_allocating_is_one_line(tmp_path, capsys, monkeypatch):
    from ddpg.run import builder

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 84.0 GiB for an array with shape (7000000000, 3)")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builder, "_replay", no_memory)
    assert main(["train", "--env", "Pendulum-v1", "--set", "video=false"]) == 1
    line = error_line(capsys)
    assert line.startswith("error: out of memory allocating the replay buffer (buffer_size 200000")
    assert list(tmp_path.iterdir()) == []
