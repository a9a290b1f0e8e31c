"""LaneFollowing-v0: Duckietown-style lane following, rendered with numpy.

Public API: ``LaneFollowingEnv`` (also ``gymnasium.make("LaneFollowing-v0")`` after ``register()``),
``SpeedSteeringAction``, ``LanePose`` and the reward helpers, ``ScriptedController`` and
``reference``, ``load_map`` / ``parse_map`` and ``BUILTIN_MAPS``.
"""

from __future__ import annotations

import gymnasium

from ddpg.envs.lane_following.controller import ScriptedController, reference
from ddpg.envs.lane_following.env import LaneFollowingEnv, SpeedSteeringAction
from ddpg.envs.lane_following.maps import BUILTIN_MAPS, RoadMap, load_map, parse_map
from ddpg.envs.lane_following.rewards import BUILTIN_REWARDS, LanePose, RewardFn, resolve_reward

ENV_ID = "LaneFollowing-v0"

__all__ = [
    "BUILTIN_MAPS",
    "BUILTIN_REWARDS",
    "ENV_ID",
    "LaneFollowingEnv",
    "LanePose",
    "RewardFn",
    "RoadMap",
    "ScriptedController",
    "SpeedSteeringAction",
    "load_map",
    "parse_map",
    "reference",
    "register",
    "resolve_reward",
]


def register() -> None:
    """Register LaneFollowing-v0 with Gymnasium; calling it again does nothing."""
    if ENV_ID in gymnasium.registry:
        return
    # No TimeLimit wrapper: the env truncates at its own max_steps.
    gymnasium.register(id=ENV_ID, entry_point="ddpg.envs.lane_following.env:LaneFollowingEnv")
