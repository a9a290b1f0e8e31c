"""Frames per second of the slot-car renderer (rgb_array), printed as one JSON line.

Usage: python bench/slot_car_render.py [--track grand_prix] [--size 400] [--frames 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ddpg.envs.slot_car.env import SlotCarEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--track", default="grand_prix")
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()

    env = SlotCarEnv(track=args.track, render_mode="rgb_array", render_size=args.size, on_crash="reset")
    env.reset(seed=0)
    action = np.array([0.4], dtype=np.float32)
    env.render()  # the static background is drawn on the first call; keep it out of the timing
    render_s = 0.0
    start = time.perf_counter()
    for _ in range(args.frames):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
        t0 = time.perf_counter()
        frame = env.render()
        render_s += time.perf_counter() - t0
    total_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "bench": "slot_car_render",
                "track": args.track,
                "frame_shape": list(frame.shape),
                "frames": args.frames,
                "render_fps": round(args.frames / render_s, 1),
                "step_and_render_fps": round(args.frames / total_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
