"""Stepping the environments: exploration, and terminated kept apart from truncated.

The collector turns the actor's normalised actions into environment actions and back into transitions.
It steps `n_envs` copies of the environment together (a Gymnasium vector env: in this process, or one
subprocess each when a step is expensive) and acts for all of them with one forward pass. It stores the
observation the environment returned from `step`, so at a time-limit truncation the buffer holds the
true final observation — never the first observation of the next episode.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.agent.noise import ActionNoise
from ddpg.envs import EnvFailure
from ddpg.types import ActionScale, Episode, Transition


@dataclass
class StepResult:
    """One step of every environment: a transition per env (env index, transition) in env order, the
    episodes that ended, and the envs whose step was non-finite and was dropped (`skip_nonfinite`)."""

    transitions: list[tuple[int, Transition]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


class NonFiniteError(RuntimeError):
    """The environment returned a NaN or infinite observation or reward."""


VectorEnv = gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv  # both can `call` their envs' methods


def vector_env(make: Sequence[Callable[[], gym.Env]], asynchronous: bool = False) -> VectorEnv:
    """The envs `make` builds, stepped together. An env that ends is reset in the same step, and the
    step's info carries its true final observation (`final_obs`)."""
    mode = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous:
        # Not fork: forking a process whose torch has started threads can deadlock the child.
        return gym.vector.AsyncVectorEnv(make, autoreset_mode=mode, context="forkserver")
    # copy=False: the observations come back in the vector env's own array, which the next step refills;
    # `Collector` copies them with np.copy (0.2 µs; gymnasium's deepcopy took 9 µs on a loaded machine).
    return gym.vector.SyncVectorEnv(make, autoreset_mode=mode, copy=False)


class Collector:
    """Acts in `envs.num_envs` environments: uniform random during warm-up, then μ(s) + noise, clipped.

    `obs` holds one observation per env; `explore` and `step` take and return one action per env.
    Episodes are numbered in the order they end (env order within a step).
    """

    def __init__(
        self,
        envs: VectorEnv,
        noise: ActionNoise,
        rng: np.random.Generator,
        seed: int,
        skip_nonfinite: bool = False,
        name: str = "",
    ) -> None:
        self.envs = envs
        self.name = name or "the environment"
        self.n = envs.num_envs
        self.noise = noise
        self.rng = rng
        self.skip_nonfinite = skip_nonfinite
        self._subprocesses = isinstance(envs, gym.vector.AsyncVectorEnv)
        space = envs.single_action_space
        assert isinstance(space, gym.spaces.Box)  # make_env refuses any other action space
        self.scale = ActionScale(space.low, space.high)
        self.action_shape: tuple[int, ...] = space.shape
        self.action_dim = int(np.prod(space.shape))
        with self._failing_at(0):
            obs, _ = envs.reset(seed=seed)  # env i is seeded with seed + i
        self.obs = np.copy(obs)  # not the vector env's array (see `vector_env`)
        self.episode = 0  # episodes ended so far, all envs together
        self.episode_return = np.zeros(self.n)
        self.episode_length = np.zeros(self.n, dtype=np.int64)

    def explore(self, policy: Callable[[np.ndarray], np.ndarray] | None, step: int) -> np.ndarray:
        """Normalised actions, one row per env: uniform when `policy` is None (warm-up), else μ(s) plus
        noise. `policy` maps a batch of observations to a batch of actions."""
        if policy is None:
            return self.rng.uniform(-1.0, 1.0, (self.n, self.action_dim)).astype(np.float32)
        action = policy(self.obs) + self.noise.sample(step, self.episode)
        return np.clip(action, -1.0, 1.0)

    @contextmanager
    def _failing_at(self, step: int | None) -> Iterator[None]:
        """An `EnvFailure` from the envs (in this process or a subprocess, which gymnasium logs as
        warnings) named with the environment and the step."""
        # Only subprocess envs log a failure as warnings; catching warnings costs 4-5 µs, half as much as
        # Pendulum's physics, so envs stepped in this process skip it.
        with warnings.catch_warnings() if self._subprocesses else nullcontext():
            if self._subprocesses:
                warnings.filterwarnings("ignore", message=r"(?s).*(ERROR: |Received the following error)")
            try:
                yield
            except EnvFailure as e:
                at = f" at step {step}" if step is not None else ""
                raise EnvFailure(f"environment '{self.name}' failed{at} {e}") from None

    def step(self, actions: np.ndarray, step: int | None = None) -> StepResult:
        """One step of every env with `actions`; `step` (the step being taken) names a failure."""
        env_actions = self.scale.to_env(actions).reshape(self.n, *self.action_shape)
        with self._failing_at(step):
            next_obs, reward, terminated, truncated, info = self.envs.step(env_actions)
        next_obs = np.copy(next_obs)  # transitions and `obs` keep it; the vector env refills its own
        ended = terminated | truncated
        final_obs: Any = info.get("final_obs", next_obs)  # absent when no env ended this step
        result = StepResult()
        for i in range(self.n):
            # Gymnasium has already reset an env that ended: its final observation is in the info.
            last = final_obs[i] if ended[i] else next_obs[i]
            if not (np.isfinite(reward[i]) and np.all(np.isfinite(last))):
                if not self.skip_nonfinite:
                    raise NonFiniteError("the environment returned a non-finite observation or reward")
                result.skipped.append(i)
                continue
            transition = Transition(
                self.obs[i],
                actions[i],
                float(reward[i]),
                last,
                bool(terminated[i]),
                bool(truncated[i]),
                first=self.episode_length[i] == 0,
            )
            result.transitions.append((i, transition))
            self.episode_return[i] += float(reward[i])
            self.episode_length[i] += 1
            if ended[i]:
                result.episodes.append(
                    Episode(self.episode, float(self.episode_return[i]), int(self.episode_length[i]),
                            _env_info(info.get("final_info", {}), i))
                )  # fmt: skip
                self.episode += 1
                self.episode_return[i], self.episode_length[i] = 0.0, 0
                self.noise.reset(i)
        if result.skipped:
            next_obs = self._restart(result.skipped, next_obs)
        self.obs = next_obs
        return result

    def _restart(self, envs: list[int], obs: np.ndarray) -> np.ndarray:
        """Abandon the episodes of `envs` (after a skipped non-finite step): fresh ones, not counted."""
        mask = np.zeros(self.n, dtype=bool)
        mask[envs] = True
        with self._failing_at(None):
            fresh, _ = self.envs.reset(options={"reset_mask": mask})
        obs = np.array(obs, copy=True)
        obs[mask] = fresh[mask]
        for i in envs:
            self.noise.reset(i)
            self.episode_return[i], self.episode_length[i] = 0.0, 0
        return obs

    def close(self) -> None:
        self.envs.close()


def _env_info(batched: dict[str, Any], i: int) -> dict[str, Any]:
    """Env `i`'s entries of a vector env's info dict (entries `_key` mark which envs have `key`)."""
    return {
        key: value[i]
        for key, value in batched.items()
        if not key.startswith("_") and batched.get(f"_{key}", np.ones(i + 1, bool))[i]
    }
