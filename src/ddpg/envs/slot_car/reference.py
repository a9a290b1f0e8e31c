"""What a driver could achieve: the best constant throttle and the physically optimal speed profile.

Lap times follow the environment's definition: laps are timed between crossings of the start line.
A *flying* lap (the reference ``lap_time``) is a lap in the periodic steady state, which is what the
environment's second and later laps are; the *standing* lap starts at rest on the line, as the
environment's first lap does. Compare an agent's ``best_lap_time`` with the flying figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddpg.envs.slot_car import physics as dyn
from ddpg.envs.slot_car.physics import CarParams, car_params
from ddpg.envs.slot_car.track import Track, make_track


@dataclass
class LapRecord:
    """Speed against track position over one lap (the best completed one, if any)."""

    s: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    lap_time: float = math.inf
    laps_completed: int = 0


def grip_limit(track: Track, params: CarParams) -> np.ndarray:
    """Highest speed at each sample: sqrt(grip / |kappa|), capped by the car's top speed (m/s)."""
    kappa = np.abs(track.kappa)
    top = dyn.top_speed(params)
    with np.errstate(divide="ignore"):
        limit = np.sqrt(params.grip / kappa)
    return np.minimum(limit, top)


def optimal_profile(track: Track, params: CarParams | None = None) -> dict[str, Any]:
    """The fastest speed profile: the grip limit, lowered by full-throttle acceleration out of each
    bend (forward pass) and full braking into it (backward pass).

    Returns arrays ``s``, ``v`` (flying lap) and ``v_grip``, and the flying and standing lap times
    (integral of ds / v, exact for constant acceleration on each sample interval).
    """
    p = car_params(params)
    ds = track.spacing
    limit = grip_limit(track, p)
    # The slowest point of the lap is reached at exactly its grip limit, so start the passes there.
    shift = int(np.argmin(limit))
    cap = np.roll(limit, -shift)
    fly = _forward_pass(cap, float(cap[0]), ds, p)
    fly = _backward_pass(fly, ds, p)
    fly = np.roll(fly, shift)
    # One extra sample: the standing lap ends on the start line, still accelerating if grip allows.
    standing = _forward_pass(np.append(fly, fly[0]), 0.0, ds, p)
    return {
        "s": track.s,
        "v": fly,
        "v_grip": limit,
        "lap_time": _lap_time(fly, float(fly[0]), ds),
        "standing_lap_time": _lap_time(standing[:-1], float(standing[-1]), ds),
    }


def _forward_pass(cap: np.ndarray, v0: float, ds: float, p: CarParams) -> np.ndarray:
    v = np.empty_like(cap)
    v[0] = min(v0, cap[0])
    for i in range(1, len(cap)):
        prev = float(v[i - 1])
        gain = 2.0 * dyn.acceleration(1.0, prev, p) * ds
        v[i] = min(cap[i], math.sqrt(max(0.0, prev * prev + gain)))
    return v


def _backward_pass(cap: np.ndarray, ds: float, p: CarParams) -> np.ndarray:
    """Lower speeds so that full braking reaches every later speed; wraps once round the lap."""
    v = cap.copy()
    nxt = float(v[0])
    for i in range(len(v) - 1, -1, -1):
        decel = (p.max_brake_force + dyn.resistance(nxt, p)) / p.mass
        v[i] = min(v[i], math.sqrt(nxt * nxt + 2.0 * decel * ds))
        nxt = float(v[i])
    return v


def _lap_time(v: np.ndarray, v_end: float, ds: float) -> float:
    ends = np.append(v[1:], v_end)
    return float(np.sum(2.0 * ds / (v + ends)))


def best_constant_throttle(
    track: Track, params: CarParams | None = None, max_laps: int = 12
) -> dict[str, Any]:
    """The largest constant throttle that never de-slots, and its lap times in the environment.

    At constant throttle the speed rises monotonically to the terminal speed wherever the car is, so
    the car never crashes exactly when the terminal speed stays within the grip limit of the tightest
    point; more throttle is faster. The lap is then driven in the environment until lap times settle.
    """
    from ddpg.envs.slot_car.env import SlotCarEnv

    p = car_params(params)
    v_max = float(np.min(grip_limit(track, p)))
    lo, hi = 0.0, 1.0
    if dyn.terminal_speed(1.0, p) <= v_max:
        lo = 1.0
    else:
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if dyn.terminal_speed(mid, p) <= v_max else (lo, mid)
    env = SlotCarEnv(track=track, physics=p, observation="minimal", max_time_s=None, max_laps=max_laps)
    env.reset(seed=0)
    action = np.array([lo], dtype=np.float32)
    crashed = False
    while True:
        _, _, terminated, truncated, _info = env.step(action)
        laps = env.state.lap_times
        if terminated:
            crashed = True
            break
        if truncated or (len(laps) >= 3 and abs(laps[-1] - laps[-2]) < 1e-4):
            break
    laps = env.state.lap_times
    return {
        "throttle": lo,
        "lap_time": laps[-1] if laps else math.inf,
        "standing_lap_time": laps[0] if laps else math.inf,
        "terminal_speed": dyn.terminal_speed(lo, p),
        "crashed": crashed,
    }


def reference(track: Any, params: CarParams | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Both references for a track (name, file, points or `Track`), JSON-serialisable.

    ``ratio`` is the constant-throttle flying lap time over the optimal one (> 1).
    """
    trk = make_track(track)
    p = car_params(params)
    const = best_constant_throttle(trk, p)
    opt = optimal_profile(trk, p)
    return {
        "track": trk.name,
        "length_m": trk.length,
        "lap_definition": "flying lap between start-line crossings (environment laps 2+); "
        "standing_lap_time starts at rest on the line (environment lap 1)",
        "constant_throttle": const,
        "optimal": {"lap_time": opt["lap_time"], "standing_lap_time": opt["standing_lap_time"]},
        "ratio": const["lap_time"] / opt["lap_time"],
        "profile": {
            "s": opt["s"].tolist(),
            "v": opt["v"].tolist(),
            "v_grip": opt["v_grip"].tolist(),
        },
    }


def record_best_lap(
    policy: Callable[[np.ndarray], Any],
    env: Any,
    seed: int = 0,
    max_steps: int = 100_000,
) -> LapRecord:
    """Drive one episode with `policy` and return (s, v) of its fastest completed lap.

    `env` is a slot-car env (possibly wrapped) or a mapping of its keyword arguments. Without a
    completed lap the record holds the lap driven so far and ``lap_time`` is inf.
    """
    if isinstance(env, Mapping):
        from ddpg.envs.slot_car.env import SlotCarEnv

        env = SlotCarEnv(**env)
    obs, info = env.reset(seed=seed)
    laps: list[LapRecord] = [LapRecord()]
    for _ in range(max_steps):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if info["laps_completed"] > len(laps) - 1:
            laps[-1].lap_time = float(info["lap_time"])
            laps.append(LapRecord())
        laps[-1].s.append(float(info["track_position"]))
        laps[-1].v.append(float(info["speed"]))
        if terminated or truncated:
            break
    done = [lap for lap in laps if math.isfinite(lap.lap_time)]
    best = min(done, key=lambda lap: lap.lap_time) if done else laps[-1]
    best.laps_completed = len(done)
    return best


def plot_profile(
    ax_or_path: Any,
    track: Any,
    params: CarParams | Mapping[str, Any] | None = None,
    learned_s: Any = None,
    learned_v: Any = None,
) -> Any:
    """Speed against track position: the grip limit, the optimal profile and, if given, the learned
    policy's lap. `ax_or_path` is a matplotlib Axes (returned) or a file path (the figure is saved
    there with the Agg canvas, no pyplot state, and the path is returned)."""
    trk = make_track(track)
    p = car_params(params)
    opt = optimal_profile(trk, p)
    if isinstance(ax_or_path, str | Path):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 4), layout="constrained")
        FigureCanvasAgg(fig)
        _draw_profile(fig.add_subplot(), trk, opt, learned_s, learned_v)
        fig.savefig(ax_or_path, dpi=120)
        return ax_or_path
    _draw_profile(ax_or_path, trk, opt, learned_s, learned_v)
    return ax_or_path


def _draw_profile(ax: Any, trk: Track, opt: dict[str, Any], learned_s: Any, learned_v: Any) -> None:
    ax.fill_between(opt["s"], opt["v_grip"], np.max(opt["v_grip"]) * 1.1, color="0.85", label="beyond grip")
    ax.plot(opt["s"], opt["v_grip"], color="0.4", lw=1, label="grip limit")
    ax.plot(opt["s"], opt["v"], color="tab:blue", lw=2, label=f"optimal ({opt['lap_time']:.3f} s)")
    if learned_s is not None and learned_v is not None and len(learned_s):
        ax.plot(learned_s, learned_v, color="tab:red", lw=1.5, label="learned policy")
    ax.set_xlim(0.0, trk.length)
    ax.set_ylim(0.0, np.max(opt["v_grip"]) * 1.1)
    ax.set_xlabel("track position s (m)")
    ax.set_ylabel("speed (m/s)")
    ax.set_title(f"Speed profile on {trk.name} ({trk.length:.2f} m)")
    ax.legend(loc="lower right", fontsize="small")
