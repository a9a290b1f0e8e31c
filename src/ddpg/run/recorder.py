"""Replaying an environment instead of saving it: most environments cannot be saved.

`EpisodeRecorder`, around each of the collector's envs, remembers how the current episode began (the
reset seed, or the generator states just before the reset) and every action since; on resume the
environment is reset from the same generator states and stepped through the same actions, and the
resulting observation is checked against the one saved. The generator states travel as JSON.
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np

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
        shape = tuple(self.action_space.shape or ())
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
        if snapshot is None:
            raise ValueError("restore_pending() without a snapshot set in `pending`")
        return self.restore(snapshot)
