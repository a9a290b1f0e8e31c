"""Slot-car benchmark: a preset (SlotCarRacing-v0's by default) against the two lap-time references.

For each track and seed: train with the preset (plus any --set overrides), then drive 10 laps with the
deterministic policy and compare its best flying lap with the best constant throttle and the optimal
speed profile. Goal: best lap <= 0.90 x constant throttle and <= 1.05 x optimal, no crash in 10 laps.
Prints one JSON line per track and seed, then per track the IQM over seeds of the final policy's best
lap / optimal lap, with its 95% stratified bootstrap interval (a policy that crashes or does not finish
its 10 laps counts as its best lap, or as 2.0 x optimal when it laps none).

    OMP_NUM_THREADS=1 python bench/slot_car.py [--tracks oval figure8 grand_prix] [--seeds 0 1 2 3 4] \
        [--preset FILE] [--set KEY=VALUE ...] [--out-dir runs/bench_slotcar]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from ddpg.config import resolve
from ddpg.envs.slot_car import SlotCarEnv
from ddpg.envs.slot_car.reference import reference
from ddpg.experiments.compare import iqm_interval
from ddpg.run.agent import DDPG

EVAL_LAPS = 10
CONST_FACTOR = 0.90
OPTIMAL_FACTOR = 1.05


def drive_laps(agent: DDPG, env_kwargs: dict[str, Any], laps: int = EVAL_LAPS) -> dict[str, Any]:
    """Race `laps` laps (or until a crash, or 60 simulated seconds) with the deterministic policy."""
    race = {"max_laps": laps, "max_time_s": 60.0, "on_crash": "terminate", "random_start": False}
    kwargs = {**env_kwargs, **race}
    env = SlotCarEnv(**kwargs)
    obs, info = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(agent.act(obs))
        done = terminated or truncated
    flying = env.state.lap_times[1:]  # lap 1 is a standing start
    return {
        "laps_completed": info["laps_completed"],
        "crashes": info["crashes"],
        "best_lap_s": min(flying) if flying else math.inf,
        "standing_lap_s": env.state.lap_times[0] if env.state.lap_times else math.inf,
    }


def save_still(agent: DDPG, env_kwargs: dict[str, Any], path: Path, seconds: float = 6.0) -> None:
    """A PNG of the race after `seconds` of simulated time (a lap or two of speed-coloured trail)."""
    import imageio.v3 as iio

    kwargs = {**env_kwargs, "max_time_s": None, "random_start": False}
    env = SlotCarEnv(**kwargs, render_mode="rgb_array", render_size=360)
    obs, _ = env.reset(seed=0)
    while env.state.time < seconds:
        obs, _, terminated, _, _ = env.step(agent.act(obs))
        if terminated:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, env.render(), optimize=True)


NO_LAP = 2.0  # the ratio a policy that never completes a flying lap scores in the aggregate


def run_track(
    track: str,
    seed: int,
    overrides: list[str],
    out_dir: Path,
    still: Path | None = None,
    chunk: int = 5000,
    preset: str | None = None,
) -> dict[str, Any]:
    """Train in chunks of `chunk` steps, driving 10 laps after each; report the final policy and the
    best checkpoint (fastest crash-free 10 laps), both saved under the run directory."""
    config = resolve(
        env_id="SlotCarRacing-v0",
        preset=preset,
        overrides=[f"env.track={track}", "progress=false", "video=false", *overrides],
        seed=seed,
    )
    env_kwargs, total_steps = config.environment.kwargs, config.loop.total_steps
    ref = reference(track, env_kwargs.get("physics"))
    const, opt = ref["constant_throttle"]["lap_time"], ref["optimal"]["lap_time"]
    run_dir = out_dir / f"{track}_s{seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.perf_counter()
    agent = DDPG(config.environment.id, config)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for steps in [*range(chunk, total_steps, chunk), total_steps]:
        agent.learn(total_steps=steps)
        wall = round(time.perf_counter() - started, 1)
        laps = {"steps": steps, "wall_s": wall, **drive_laps(agent, env_kwargs)}
        history.append(laps)
        clean = laps["crashes"] == 0 and laps["laps_completed"] >= EVAL_LAPS
        if clean and (best is None or laps["best_lap_s"] < best["best_lap_s"]):
            best = laps
            agent.save(run_dir / "best")
    agent.save(run_dir / "final")
    (run_dir / "history.json").write_text(json.dumps(_finite(history), indent=1))
    final = history[-1]
    if still is not None:
        chosen = DDPG.load(run_dir / "best") if best is not None else agent
        save_still(chosen, env_kwargs, still.with_name(f"{still.stem}_{track}{still.suffix}"))

    def goal(laps: dict[str, Any] | None) -> bool:
        return bool(
            laps is not None
            and laps["best_lap_s"] <= CONST_FACTOR * const
            and laps["best_lap_s"] <= OPTIMAL_FACTOR * opt
            and laps["crashes"] == 0
            and laps["laps_completed"] >= EVAL_LAPS
        )

    return {
        "track": track,
        "seed": seed,
        "steps": total_steps,
        "train_wall_s": round(time.perf_counter() - started, 1),
        "constant_throttle_lap_s": const,
        "optimal_lap_s": opt,
        "final": {**final, "vs_optimal": final["best_lap_s"] / opt},
        "final_goal_met": goal(final),
        "best": None if best is None else {**best, "vs_optimal": best["best_lap_s"] / opt},
        "best_goal_met": goal(best),
        "run_dir": run_dir.name,
    }


def _finite(x: Any) -> Any:
    """JSON has no Infinity: a lap never completed is null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", nargs="+", default=["oval", "figure8", "grand_prix"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--preset", help="a preset name or YAML file (default: SlotCarRacing-v0's own)")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_slotcar"))
    parser.add_argument("--still", type=Path, help="also save a PNG frame per track: STEM_<track>.png")
    args = parser.parse_args()
    for track in args.tracks:
        ratios = []
        for seed in args.seeds:
            row = run_track(track, seed, args.overrides, args.out_dir, args.still, preset=args.preset)
            print(json.dumps(_finite(row)), flush=True)
            ratio = row["final"]["vs_optimal"]
            ratios.append(ratio if math.isfinite(ratio) else NO_LAP)
        i = iqm_interval(ratios)
        listed = ", ".join(f"{r:.3f}" for r in ratios)
        print(
            f"{track}: final policy's best lap / optimal, IQM over {len(ratios)} seeds "
            f"{i.iqm:.3f} [{i.low:.3f}, {i.high:.3f}] ({listed})"
        )


if __name__ == "__main__":
    main()
