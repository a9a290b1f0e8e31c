"""`ddpg duckietown reference`: the distance the scripted driver travels per episode in the simulator."""

from __future__ import annotations

import argparse

from ddpg.cli.shared import Parser
from ddpg.envs.lane_following.cli import add_reference, run_reference


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "duckietown", help="Duckietown-v0 tools", description="Duckietown-v0 (gym-duckietown) tools."
    )
    group = p.add_subparsers(dest="duckietown", required=True, parser_class=Parser, metavar="COMMAND")
    add_reference(
        group,
        help="distance the scripted driver travels per episode",
        description="Run the scripted lane-pose driver in gym-duckietown (the reference a pixel policy is "
        "measured against) and report the distance travelled along the lane per episode, the share of "
        "episodes that kept to the road, and the return under env.reward: a reward under which this "
        "driving returns less than leaving the road teaches a policy to leave it.",
        example="env.map_name=loop_empty env.max_steps=1000",
        func=cmd_duckietown_reference,
    )


def cmd_duckietown_reference(args: argparse.Namespace) -> int:
    from ddpg.envs.duckietown.controller import reference

    return run_reference(args, reference)
