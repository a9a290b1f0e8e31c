"""Frames per second of the LaneFollowing camera renderer and of whole env steps, as one JSON line.

Usage: PYTHONPATH=src python bench/lane_render.py [--frames 5000] [--size 64] [--map loop]
"""

from __future__ import annotations

import os

# One core, as the spec's target is per core; set before numpy starts its thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from ddpg.envs.lane_following import LaneFollowingEnv, ScriptedController, load_map  # noqa: E402
from ddpg.envs.lane_following.camera import CameraParams, GroundCamera, Palette, rasterise  # noqa: E402
from ddpg.envs.lane_following.robot import RobotPose  # noqa: E402


def _rate(count: int, run: Callable[[int], None]) -> float:
    start = time.perf_counter()
    run(count)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--map", default="loop")
    args = parser.parse_args()
    env = LaneFollowingEnv(
        map_name=args.map, camera_width=args.size, camera_height=args.size, max_steps=10**9
    )
    _, info = env.reset(seed=0)
    controller = ScriptedController()

    texture = rasterise(load_map(args.map))
    colours, sky = Palette().ground_colours()[texture.classes], np.array(Palette().sky, np.uint8)
    camera = GroundCamera(args.size, args.size, CameraParams())
    poses = [RobotPose(0.3 + 0.001 * i, 0.9, 0.01 * i) for i in range(100)]

    def render(count: int) -> None:
        for i in range(count):
            camera.render(texture, colours, sky, poses[i % len(poses)])

    def step(count: int) -> None:
        nonlocal info
        for _ in range(count):
            _, _, terminated, truncated, info = env.step(controller(info))
            if terminated or truncated:
                _, info = env.reset()

    render(100)
    render_fps = _rate(args.frames, render)
    step_fps = _rate(args.frames, step)
    result = {
        "bench": "lane_render",
        "map": args.map,
        "camera": [args.size, args.size],
        "frames": args.frames,
        "render_fps": round(render_fps, 1),
        "env_steps_per_s": round(step_fps, 1),
        "numpy": np.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
