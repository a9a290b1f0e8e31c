"""`ddpg duckietown reference`: the distance the scripted driver travels per episode in the simulator."""

from __future__ import annotations

import argparse
import json

from ddpg.cli.shared import Parser, UsageError, add_overrides, env_overrides, positive, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "duckietown", help="Duckietown-v0 tools", description="Duckietown-v0 (gym-duckietown) tools."
    )
    group = p.add_subparsers(dest="duckietown", required=True, parser_class=Parser, metavar="COMMAND")
    b = group.add_parser(
        "reference",
        help="distance the scripted driver travels per episode",
        description="Run the scripted lane-pose driver in gym-duckietown (the reference a pixel policy is "
        "measured against) and report the distance travelled along the lane per episode and the share of "
        "episodes that kept to the road.",
    )
    b.add_argument("--episodes", type=positive, default=5, help="episodes (default 5)")
    b.add_argument("--seed", type=seed, default=0, help="seed of the first episode (default 0)")
    add_overrides(
        b, "env.KEY=VALUE", "environment arguments, e.g. --set env.map_name=loop_empty env.max_steps=1000"
    )
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    b.set_defaults(func=cmd_duckietown_reference)


def cmd_duckietown_reference(args: argparse.Namespace) -> int:
    from ddpg.envs.duckietown.controller import reference

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
    for i, (d, n, off) in enumerate(zip(result["distance_travelled"], result["steps"], result["left_road"])):
        print(f"episode {i}: {d:.2f} m in {n} steps{' (left the road)' if off else ''}")
    print(
        f"mean {result['mean']:.2f} ± {result['std']:.2f} m over {result['episodes']} episodes, "
        f"kept to the road in {result['lane_keeping_rate']:.0%}"
    )
    return 0
