"""Duckietown-v0: lane following in gym-duckietown, the Duckietown project's OpenGL simulator.

The simulator is the optional `duckietown` extra; importing this package does not import it (that
happens when the env is made), so `import ddpg` stays fast and works without it. ``missing()`` says
what to install when it, or the GL libraries, are not there.

Public API: ``DuckietownEnv`` (also ``gymnasium.make("Duckietown-v0")``), ``missing``, ``ENV_ID``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium

from ddpg.envs.duckietown.simulator import missing

if TYPE_CHECKING:
    from ddpg.envs.duckietown.env import DuckietownEnv

ENV_ID = "Duckietown-v0"

__all__ = ["ENV_ID", "DuckietownEnv", "missing", "register"]


def __getattr__(name: str) -> Any:
    if name == "DuckietownEnv":
        from ddpg.envs.duckietown.env import DuckietownEnv

        return DuckietownEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Register Duckietown-v0 with Gymnasium (without importing the simulator); again does nothing."""
    if ENV_ID in gymnasium.registry:
        return
    # No TimeLimit wrapper: the env truncates at its own max_steps.
    gymnasium.register(id=ENV_ID, entry_point="ddpg.envs.duckietown.env:DuckietownEnv")
