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


OWN_ENVS = ("slot_car", "lane_following")  # the packages under ddpg/envs that hold an environment


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


def registered_ids() -> list[str]:
    """Continuous-control ids worth listing: ddpg's own and Gymnasium's classic/Box2D/MuJoCo ones."""
    ours = [k for k, spec in gym.registry.items() if str(spec.entry_point).startswith("ddpg.")]
    return sorted(ours)
