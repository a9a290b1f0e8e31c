"""Making environments: Gymnasium ids, a user's `package.module:ClassName`, and ddpg's own envs.

Importing `ddpg` registers the environments this package ships, so `gymnasium.make` finds them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np


class EnvError(ValueError):
    """The environment cannot be made or is not one DDPG can act in; the message says why."""


class EnvFailure(RuntimeError):
    """The environment raised, or returned what its spaces do not allow, when ddpg called it; the
    message names the environment, the call (make, reset, step) and the step."""


def describe(error: BaseException) -> str:
    """An exception as `Type: message`, on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# The packages under ddpg/envs that hold an environment.
OWN_ENVS = ("slot_car", "lane_following", "duckietown")


def _own(suffix: str = "") -> list[ModuleType]:
    """The module `ddpg.envs.<name><suffix>` of each of OWN_ENVS, skipping any that is not there."""
    found = []
    for name in OWN_ENVS:
        package = f"{__name__}.{name}"
        try:
            found.append(importlib.import_module(package + suffix))
        except ModuleNotFoundError as e:
            if e.name not in (package, package + suffix):
                raise
    return found


def register_all() -> None:
    """Register ddpg's own environments with Gymnasium (idempotent)."""
    for package in _own():
        package.register()


def cli_modules() -> list[ModuleType]:
    """The command-line groups of ddpg's own environments (`ddpg slotcar …`, `ddpg lane …`): each
    package's `cli` module, whose `register(subparsers)` adds its commands. Imported only when called."""
    return _own(".cli")


def make_env(
    env_id: str,
    kwargs: dict[str, Any] | None = None,
    *,
    render_mode: str | None = None,
    max_episode_steps: int | None = None,
) -> gym.Env:
    """A Gymnasium env from a registered id or `package.module:ClassName`, checked for DDPG."""
    kwargs = dict(kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
        # Classic-control envs draw with pygame; headless, SDL must not look for a display or a sound card.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    if ":" in env_id and env_id not in gym.registry:
        env = _make_from_class(env_id, kwargs)
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
    else:
        try:
            env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
        except gym.error.Error as e:
            raise EnvError(f"unknown environment '{env_id}': {e} (see `ddpg envs`)") from None
        except EnvError:
            raise
        except (TypeError, ValueError) as e:
            # An env that validates its constructor arguments raises ValueError naming the argument.
            raise EnvError(f"environment '{env_id}' rejected its arguments: {e}") from None
        except ModuleNotFoundError as e:
            raise EnvError(f"environment '{env_id}' needs the missing package '{e.name}'") from None
        except Exception as e:
            raise EnvFailure(f"environment '{env_id}' failed in make: {describe(e)}") from e
    check_spaces(env, env_id)
    return env


def _make_from_class(spec: str, kwargs: dict[str, Any]) -> gym.Env:
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise EnvError(f"cannot import environment '{spec}': {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, gym.Env)):
        raise EnvError(f"'{spec}' is not a gymnasium.Env subclass")
    try:
        return cls(**kwargs)
    except EnvError:
        raise
    except (TypeError, ValueError) as e:
        raise EnvError(f"environment '{spec}' rejected its arguments: {e}") from None
    except Exception as e:
        raise EnvFailure(f"environment '{spec}' failed in make: {describe(e)}") from e


def shape(space: gym.Space) -> tuple[int, ...]:
    """A space's shape: Gymnasium types it optional, and every space ddpg accepts has one."""
    if space.shape is None:
        raise EnvError(f"a {type(space).__name__} space without a shape cannot be acted in")
    return space.shape


def check_spaces(env: gym.Env, env_id: str) -> None:
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        env.close()
        raise EnvError(
            f"environment '{env_id}' has a {type(space).__name__} action space; "
            "DDPG needs a continuous Box action space"
        )
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        env.close()
        raise EnvError(f"environment '{env_id}' has unbounded actions; DDPG needs finite low and high")
    if not isinstance(env.observation_space, gym.spaces.Box):
        env.close()
        raise EnvError(
            f"environment '{env_id}' has a {type(env.observation_space).__name__} observation "
            "space; ddpg needs a Box (flatten it with gymnasium.wrappers.FlattenObservation)"
        )
    for name, box in (("observation", env.observation_space), ("action", space)):
        if not box.shape or 0 in box.shape:
            env.close()
            raise EnvError(
                f"environment '{env_id}' has an {name} space of shape {box.shape}; "
                "ddpg needs at least one dimension and no empty one"
            )


def registered_ids() -> list[str]:
    """Continuous-control ids worth listing: ddpg's own and Gymnasium's classic/Box2D/MuJoCo ones."""
    ours = [k for k, spec in gym.registry.items() if str(spec.entry_point).startswith("ddpg.")]
    return sorted(ours)


def observation_problem(obs: Any, space: gym.Space) -> str | None:
    """What is wrong with `obs` for the Box `space` (its shape, or a dtype that does not cast to the
    space's without changing kind); None when nothing is."""
    expected = f"{space.shape} {space.dtype}"
    try:
        array = np.asarray(obs)
    except Exception:  # anything numpy cannot make an array of
        return f"returned a {type(obs).__name__} observation; its observation space is {expected}"
    if array.shape != space.shape or not np.can_cast(array.dtype, space.dtype or array.dtype, "same_kind"):
        got = f"{array.shape} {array.dtype}"
        return f"returned an observation of shape {got}; its observation space is {expected}"
    return None


class CheckedEnv(gym.Wrapper):
    """Turns anything `reset` or `step` raises (but an `EnvError`, which says what the user set wrong),
    or an observation its space does not allow, into an `EnvFailure` naming the call (`in reset(): …`);
    the collector adds the environment and the step."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        try:
            obs, info = self.env.reset(seed=seed, options=options)
        except (EnvError, EnvFailure):  # already says what is wrong (a user's reward function: EnvError)
            raise
        except Exception as e:
            raise EnvFailure(f"in reset(): {describe(e)}") from e
        self._check(obs, "reset")
        return obs, info

    def step(self, action: Any) -> Any:
        try:
            result = self.env.step(action)
            obs = result[0]
        except (EnvError, EnvFailure):  # already says what is wrong (a user's reward function: EnvError)
            raise
        except Exception as e:
            raise EnvFailure(f"in step(): {describe(e)}") from e
        self._check(obs, "step")
        return result

    def _check(self, obs: Any, call: str) -> None:
        # Every training step passes here: an array of exactly the space's shape and dtype needs no more.
        space = self.observation_space
        if isinstance(obs, np.ndarray) and obs.shape == space.shape and obs.dtype == space.dtype:
            return
        problem = observation_problem(obs, space)
        if problem is not None:
            raise EnvFailure(f"in {call}(): {problem}")
