"""`ddpg slotcar reference` and `ddpg slotcar profile`: lap-time references and a run's speed profile."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ddpg.cli.shared import Parser, UsageError, png, require_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "slotcar",
        help="slot-car lap-time references and speed profiles",
        description="Lap-time references for SlotCarRacing-v0 tracks and a run's speed profile.",
    )
    slot = p.add_subparsers(dest="slotcar_command", required=True, parser_class=Parser, metavar="WHAT")
    q = slot.add_parser(
        "reference",
        help="lap times of the best constant throttle and of the optimal speed profile",
        description="Flying-lap times of the best constant throttle and of the physically optimal "
        "speed profile, and their ratio; --json adds the profile arrays (s, v, v_grip).",
    )
    q.add_argument("--track", default="oval", help="built-in track name or a .yaml/.json track file")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(func=cmd_slotcar_reference)
    q = slot.add_parser(
        "profile",
        help="plot a run's speed against track position with the optimal profile and grip limit",
        description="Drive the deterministic policy the run ships (checkpoints/best, or latest where it "
        "has no evaluations) and plot the speed of its best lap against track position, with the optimal "
        "profile and the grip limit.",
    )
    q.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    q.add_argument("--out", type=png, help="output PNG (default: RUN_DIR/plots/slotcar_profile.png)")
    q.add_argument("--track", help="drive this track instead of the run's own (name or track file)")
    q.set_defaults(func=cmd_slotcar_profile)


def _track(spec: str):
    """A slot-car track for `--track`; the env's ValueError names the problem, the user needs the option."""
    from ddpg.envs.slot_car import make_track

    try:
        return make_track(spec)
    except ValueError as e:
        raise UsageError(f"--track {spec}: {str(e).removeprefix('track: ')}") from None


def _strict_json(x):
    """JSON has no Infinity: a lap never completed is null."""
    if isinstance(x, dict):
        return {k: _strict_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strict_json(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def cmd_slotcar_reference(args: argparse.Namespace) -> int:
    from ddpg.envs.slot_car.reference import reference

    ref = reference(_track(args.track))
    const, opt = ref["constant_throttle"], ref["optimal"]
    if args.json:
        print(json.dumps(_strict_json(ref), allow_nan=False))
        return 0
    print(f"track {ref['track']} ({ref['length_m']:.2f} m), flying laps:")
    print(f"  best constant throttle {const['throttle']:.3f}: {const['lap_time']:.3f} s")
    print(f"  optimal speed profile:        {opt['lap_time']:.3f} s")
    print(f"  ratio constant / optimal:     {ref['ratio']:.3f}")
    return 0


def cmd_slotcar_profile(args: argparse.Namespace) -> int:
    from ddpg.config import load_config
    from ddpg.envs.slot_car import ENV_ID, make_track
    from ddpg.envs.slot_car.physics import car_params
    from ddpg.envs.slot_car.reference import optimal_profile, plot_profile, record_best_lap
    from ddpg.files import atomic_file
    from ddpg.run.agent import DDPG

    require_run(args.run_dir)
    config_file = args.run_dir / "config.yaml"
    if config_file.is_file() and load_config(config_file).environment.id != ENV_ID:
        raise UsageError(f"{args.run_dir} is not a {ENV_ID} run")
    out = args.out or args.run_dir / "plots" / "slotcar_profile.png"
    agent = DDPG.load(args.run_dir)
    laps = {"max_laps": 5, "max_time_s": 60.0, "on_crash": "terminate", "random_start": False}
    kwargs = {**agent.config.environment.kwargs, **laps}
    if args.track is not None:
        kwargs["track"] = _track(args.track)
    track = make_track(kwargs.get("track", "oval"))
    lap = record_best_lap(agent.act, kwargs)
    with atomic_file(out) as tmp:
        plot_profile(tmp, track, kwargs.get("physics"), lap.s, lap.v)
    opt = optimal_profile(track, car_params(kwargs.get("physics")))["lap_time"]
    if math.isfinite(lap.lap_time):
        print(f"best lap {lap.lap_time:.3f} s ({lap.lap_time / opt:.3f} x optimal {opt:.3f} s)")
    else:
        print(f"no lap completed (ended at {lap.s[-1] if lap.s else 0.0:.2f} m); optimal {opt:.3f} s")
    print(out)
    return 0
