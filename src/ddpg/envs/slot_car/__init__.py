"""The slot-car racing environment ("Carrera"): tracks, physics, rendering and the optimal-lap reference."""

from __future__ import annotations

import gymnasium

from ddpg.envs.slot_car.env import SlotCarEnv
from ddpg.envs.slot_car.physics import CarParams
from ddpg.envs.slot_car.track import BUILTIN_TRACKS, Track, make_track

ENV_ID = "SlotCarRacing-v0"

__all__ = ["BUILTIN_TRACKS", "ENV_ID", "CarParams", "SlotCarEnv", "Track", "make_track", "register"]


def register() -> None:
    """Register `SlotCarRacing-v0` with Gymnasium (safe to call more than once).

    No ``max_episode_steps``: the environment truncates itself on simulated time, which crash
    penalties advance without steps, so a step-counting TimeLimit would disagree with it.
    """
    if ENV_ID in gymnasium.registry:
        return
    gymnasium.register(id=ENV_ID, entry_point="ddpg.envs.slot_car.env:SlotCarEnv", max_episode_steps=None)
