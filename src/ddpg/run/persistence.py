"""What an exact resume needs beyond weights and optimisers.

A training checkpoint also holds: every random generator (Python's `random`, numpy's legacy global,
the agent's `np.random.Generator`, torch's CPU and CUDA generators, the environment's `np_random` and
its spaces'), the replay ring exactly as laid out in memory, the n-step window, the exploration-noise
state, the current episode, and how many bytes each CSV log had. This module captures and restores those
pieces; it knows the collector, the buffer and the logs, never the trainer.

The environment is not saved (most cannot be): it is *replayed*. `EpisodeRecorder`, around each of the
collector's envs, remembers how the current episode began (the reset seed, or the generator states just
before the reset) and every action since; on resume the environment is reset from the same generator
states and stepped through the same actions, and the resulting observation is checked against the one
saved.
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.data.collector import Collector
from ddpg.data.nstep import NStepAggregator
from ddpg.data.replay import FrameReplayBuffer, ReplayBuffer
from ddpg.run.checkpoint import CheckpointError, section, verify

STATE_FILE = "state.npz"
LOG_FILES = ("metrics.csv", "updates.csv", "eval.csv")


# ---------------------------------------------------------------------------------------------------
# Generator states as JSON: numpy states hold small arrays (MT19937's key), Python's a tuple.


def to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def global_rng_state() -> dict[str, Any]:
    """Python's and numpy's global generators, which third-party environments often draw from."""
    return {"python": random.getstate(), "numpy": np.random.get_state(legacy=False)}


def set_global_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])


def restore_generator(generator: np.random.Generator, state: dict[str, Any]) -> np.random.Generator:
    """`generator` set to `state` in place (so every holder of it sees the change), or a new one when the
    bit generator differs."""
    if type(generator.bit_generator).__name__ == state["bit_generator"]:
        generator.bit_generator.state = state
        return generator
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _space_generators(env: gym.Env) -> dict[str, gym.spaces.Space]:
    return {"action_space": env.action_space, "observation_space": env.observation_space}


# ---------------------------------------------------------------------------------------------------
# The environment: record the episode, replay it on resume.


class EpisodeRecorder(gym.Wrapper):
    """Remembers how the current episode began and the actions taken since, so it can be replayed.

    It wraps each of the collector's envs, inside the env's own process when envs run in subprocesses,
    so `snapshot` and `restore` run there too (through the vector env's `call`).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.start: dict[str, Any] = {"seed": None, "env": None, "globals": None}
        self.actions: list[np.ndarray] = []
        self.pending: dict[str, Any] | None = None  # a snapshot for `restore_pending` (set_attr)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # A vector env passes its own reset_mask down; it means nothing to a single env.
        options = {k: v for k, v in (options or {}).items() if k != "reset_mask"}
        if options:
            raise ValueError("EpisodeRecorder cannot replay resets with options")
        # A seeded reset re-creates the env's generator; an unseeded one continues it, so only then does
        # its state before the reset decide the episode. Environments that draw from the global
        # generators depend on those either way.
        env_rng = None if seed is not None else self.env.unwrapped.np_random.bit_generator.state
        self.start = {"seed": seed, "env": env_rng, "globals": global_rng_state()}
        self.actions = []
        return self.env.reset(seed=seed)

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def replay(self, start: dict[str, Any], actions: np.ndarray) -> np.ndarray:
        """Reset as the recorded episode did and take its actions again; the observation reached."""
        if start["env"] is not None:
            unwrapped = self.env.unwrapped
            unwrapped.np_random = restore_generator(unwrapped.np_random, start["env"])
        set_global_rng_state(start["globals"])
        obs, _ = self.reset(seed=start["seed"])
        for action in actions:
            obs, *_ = self.step(action)
        return obs

    def snapshot(self) -> dict[str, Any]:
        """The current episode and every generator this env (and its process) draws from."""
        shape = self.action_space.shape
        return {
            "start": to_json(self.start),
            "action_dtype": str(self.actions[0].dtype) if self.actions else "float32",
            "actions": (
                np.stack([np.asarray(a, dtype=np.float64).reshape(shape) for a in self.actions])
                if self.actions
                else np.zeros((0, *shape))
            ),
            "rng": to_json(
                {
                    **global_rng_state(),
                    "env": self.env.unwrapped.np_random.bit_generator.state,
                    **{k: s.np_random.bit_generator.state for k, s in _space_generators(self).items()},
                }
            ),
        }

    def restore(self, snapshot: dict[str, Any]) -> np.ndarray:
        """Replay the snapshot's episode, then set every generator as it was; the observation reached."""
        actions = np.asarray(snapshot["actions"]).astype(np.dtype(snapshot["action_dtype"]))
        obs = self.replay(from_json(snapshot["start"]), actions)
        # The replay advanced the generators; set each to its state at the snapshot.
        rng = from_json(snapshot["rng"])
        set_global_rng_state(rng)
        unwrapped = self.env.unwrapped
        unwrapped.np_random = restore_generator(unwrapped.np_random, rng["env"])
        for name, space in _space_generators(self).items():
            generator = restore_generator(space.np_random, rng[name])
            if generator is not space.np_random:
                space._np_random = generator  # spaces have no public setter
        return obs

    def restore_pending(self) -> np.ndarray:
        """`restore(self.pending)`: a vector env's `call` passes the same arguments to every env, so
        each env's own snapshot is put in place first with `set_attr`."""
        snapshot, self.pending = self.pending, None
        return self.restore(snapshot)


# ---------------------------------------------------------------------------------------------------
# Capture and restore.


def log_sizes(root: Path) -> dict[str, int]:
    """Bytes in each CSV log now; every row is flushed as written, so this is what the run has logged."""
    return {name: (root / name).stat().st_size for name in LOG_FILES if (root / name).exists()}


def truncate_logs(root: Path, sizes: dict[str, int]) -> None:
    """Cut each log back to its size at the checkpoint: rows written after it will be written again."""
    for name, size in sizes.items():
        path = root / name
        if not path.is_file() or path.stat().st_size < size:
            raise CheckpointError(
                f"{path} is shorter than when the checkpoint was written ({size} bytes); "
                "the run directory was changed and cannot be resumed exactly"
            )
    for name, size in sizes.items():
        with (root / name).open("r+b") as f:
            f.truncate(size)


def capture(
    collector: Collector,
    buffer: ReplayBuffer | FrameReplayBuffer,
    device: torch.device,
    nsteps: list[NStepAggregator] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Everything the collector, its envs, the buffer and the generators hold: (JSON, arrays for
    state.npz, tensors)."""
    arrays = {f"buffer.{name}": value for name, value in buffer.arrays().items()}
    for i, window in enumerate(nsteps):
        arrays.update({f"nstep.{i}.{name}": value for name, value in window.arrays().items()})
    arrays["noise"] = np.asarray(collector.noise.state)
    arrays["obs"] = np.asarray(collector.obs)
    snapshots = [dict(s) for s in collector.envs.call("snapshot")]
    for i, snapshot in enumerate(snapshots):
        arrays[f"env.{i}.actions"] = snapshot.pop("actions")
    meta = {
        "buffer": {"kind": type(buffer).__name__, "capacity": buffer.capacity},
        "episode": collector.episode,
        "episode_return": collector.episode_return.tolist(),
        "episode_length": collector.episode_length.tolist(),
        "envs": snapshots,
        "rng": to_json({**global_rng_state(), "agent": collector.rng.bit_generator.state}),
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return meta, arrays, tensors


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as f:
        np.savez(f, **arrays)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of state.npz, checked against the manifest beside it; refuses pickled objects and
    names the file when it is damaged."""
    verify(path.parent, (path.name,))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def restore(
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    tensors: dict[str, torch.Tensor],
    collector: Collector,
    buffer: ReplayBuffer | FrameReplayBuffer,
    nsteps: list[NStepAggregator] = (),
) -> str | None:
    """Put the collector, its envs, the buffer and every generator back as `capture` saw them.

    Returns a warning when replaying an episode did not reach the saved observation (the environment
    is not deterministic given its seed and actions); training then continues from where the replay got.
    """
    try:
        _restore_buffer(buffer, meta["buffer"], arrays)
        for i, window in enumerate(nsteps):
            window.load_arrays(section(arrays, f"nstep.{i}"))
        noise = collector.noise
        noise.state = arrays["noise"].astype(np.float64).reshape(noise.state.shape).copy()
        if len(meta["envs"]) != collector.n:
            raise ValueError(f"the checkpoint has {len(meta['envs'])} envs, the run {collector.n}")
        snapshots = [{**s, "actions": arrays[f"env.{i}.actions"]} for i, s in enumerate(meta["envs"])]
        collector.envs.set_attr("pending", snapshots)
        obs = np.stack(collector.envs.call("restore_pending"))
        differ = [i for i in range(collector.n) if not np.array_equal(obs[i], arrays["obs"][i])]
        warning = None
        if differ:
            warning = (
                f"replaying the current episode of env {differ[0]} did not reproduce the saved "
                "observation; the environment is not deterministic given its seed and actions, so the "
                "resumed run will differ from an uninterrupted one"
            )
        collector.obs = obs
        collector.episode = int(meta["episode"])
        collector.episode_return = np.array(meta["episode_return"], dtype=np.float64)
        collector.episode_length = np.array(meta["episode_length"], dtype=np.int64)
        rng = from_json(meta["rng"])
        set_global_rng_state(rng)  # last: the envs' replays (in this process) moved them
        restore_generator(collector.rng, rng["agent"])
        torch.set_rng_state(tensors["rng.torch"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"the checkpoint's training state is incomplete or malformed ({e!r})") from None
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return warning


def _restore_buffer(
    buffer: ReplayBuffer | FrameReplayBuffer, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    if meta["kind"] != type(buffer).__name__ or int(meta["capacity"]) != buffer.capacity:
        raise ValueError(f"a {meta['kind']} of capacity {meta['capacity']} does not fit this run's buffer")
    # The ring is restored as laid out in memory, not oldest-first: sampling draws indices, and the
    # same indices must give the same transitions after a resume.
    buffer.load_arrays(section(arrays, "buffer"))


def finished_message(run_dir: Path, step: int, total: int) -> str:
    return (
        f"run {run_dir} is finished (step {step} of total_steps {total}); "
        f"give a larger total (`ddpg resume {run_dir} --steps N`, N > {step}) to train further"
    )
