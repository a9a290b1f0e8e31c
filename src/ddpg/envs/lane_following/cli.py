"""`ddpg lane reference`: the distance the scripted controller travels per episode.

`add_reference` and `run_reference` also serve `ddpg duckietown reference`: one command shape for every
lane-following env with a scripted reference."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ddpg.cli.shared import Parser, UsageError, add_overrides, env_overrides, positive, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lane", help="LaneFollowing-v0 tools", description="LaneFollowing-v0 tools.")
    lane = p.add_subparsers(dest="lane", required=True, parser_class=Parser, metavar="COMMAND")
    add_reference(
        lane,
        help="distance the scripted controller travels per episode",
        description="Run the scripted lane-pose controller (the reference a pixel policy is measured "
        "against) and report the distance travelled along the lane per episode, and its return under "
        "env.reward: a reward under which this driving returns less than leaving the road teaches a "
        "policy to leave it.",
        example="env.map_name=loop env.max_steps=1000",
        func=cmd_lane_reference,
    )


def add_reference(
    group: argparse._SubParsersAction,
    help: str,
    description: str,
    example: str,
    func: Callable[[argparse.Namespace], int],
) -> None:
    """The `reference` command of a lane-following env's group: episodes, seed, env overrides, --json."""
    b = group.add_parser("reference", help=help, description=description)
    b.add_argument("--episodes", type=positive, default=5, help="episodes (default 5)")
    b.add_argument("--seed", type=seed, default=0, help="seed of the first episode (default 0)")
    add_overrides(b, "env.KEY=VALUE", f"environment arguments, e.g. --set {example}")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=func)


def run_reference(args: argparse.Namespace, reference: Callable[..., dict[str, Any]]) -> int:
    """Run `reference` with the command's arguments and print its episodes (or its JSON)."""
    kwargs = env_overrides(args.overrides)
    try:
        result = reference(episodes=args.episodes, seed=args.seed, **kwargs)
    except TypeError as e:
        raise UsageError(f"--set: {e}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result))
        return 0
    episodes = zip(result["distance_travelled"], result["steps"], result["left_road"], result["returns"])
    for i, (d, n, off, ret) in enumerate(episodes):
        print(f"episode {i}: {d:.2f} m in {n} steps{' (left the road)' if off else ''}, return {ret:.1f}")
    summary = f"mean {result['mean']:.2f} ± {result['std']:.2f} m over {result['episodes']} episodes"
    if "lane_keeping_rate" in result:
        summary += f", kept to the road in {result['lane_keeping_rate']:.0%}"
    returns = result["returns"]
    print(f"{summary}; mean return {sum(returns) / len(returns):.1f}")
    return 0


def cmd_lane_reference(args: argparse.Namespace) -> int:
    from ddpg.envs.lane_following.controller import reference

    return run_reference(args, reference)
