"""Duckietown-v0: gym-duckietown's OpenGL simulator as a Gymnasium env, with LaneFollowing-v0's rewards."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.config.sections import positive_int
from ddpg.envs.duckietown.simulator import make_simulator, map_names
from ddpg.envs.lane_following.env import speed_steering_to_wheels
from ddpg.envs.lane_following.rewards import LanePose, RewardFn, checked_reward, resolve_reward

ACTIONS = ("wheels", "steering")
RENDER_VIEWS = ("top_down", "camera")
CAMERA_ZOOM = 4
CURVATURE_STEP = 0.05  # metres along the lane between the two tangents whose turn gives the curvature
NEVER = 2**31 - 1  # the simulator's own step limit: ours truncates


def _heading(tangent: np.ndarray) -> float:
    # The simulator's ground plane is (x, z) with z pointing backwards: a heading a looks along
    # (cos a, 0, -sin a).
    return math.atan2(-float(tangent[2]), float(tangent[0]))


class DuckietownEnv(gym.Env[np.ndarray, np.ndarray]):
    """Lane following in gym-duckietown (the `duckietown` extra), seen through the robot's camera.

    Observation: the camera image, uint8 RGB of shape (camera_height, camera_width, 3).
    Action: left and right wheel duty cycles in [-1, 1] (`action="wheels"`, the simulator's own), or
    (speed, steering) in [-1, 1]^2 turned into wheels as `SpeedSteeringAction` does (`"steering"`).
    Reward: ``reward(LanePose)``, as in LaneFollowing-v0 (built-ins and your own by name); the pose is
    also in ``info``. Leaving the road (the simulator's invalid pose) terminates the episode; it is
    truncated after ``max_steps`` steps. ``frame_skip`` physics steps of 1/30 s make one step.
    ``render()`` (`rgb_array`) returns the map seen from above, 800x600, or with
    ``render_view="camera"`` what the robot sees, the observation enlarged 4 times (videos of the camera).
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012 (Gymnasium declares it so)

    def __init__(
        self,
        map_name: str = "loop_empty",
        camera_width: int = 160,
        camera_height: int = 120,
        frame_skip: int = 1,
        domain_rand: bool = False,
        max_steps: int = 500,
        reward: str | RewardFn = "duckietown",
        action: str = "wheels",
        render_mode: str | None = None,
        render_view: str = "top_down",
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: expected 'rgb_array' or None, got {render_mode!r}")
        if render_view not in RENDER_VIEWS:
            raise ValueError(f"render_view: expected one of {', '.join(RENDER_VIEWS)}, got {render_view!r}")
        if action not in ACTIONS:
            raise ValueError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r}")
        if not isinstance(domain_rand, bool):
            raise ValueError(f"domain_rand: must be true or false, got {domain_rand!r}")
        known = map_names()
        if map_name not in known:
            raise ValueError(f"map_name: unknown map {map_name!r}; the simulator's: {', '.join(known)}")
        self.map_name = map_name
        self.max_steps = positive_int("max_steps", max_steps)
        self.action = action
        self.render_mode = render_mode
        self.render_view = render_view
        self._reward_fn = resolve_reward(reward)
        self._sim = make_simulator(
            map_name=map_name,
            camera_width=positive_int("camera_width", camera_width, 8),
            camera_height=positive_int("camera_height", camera_height, 8),
            frame_skip=positive_int("frame_skip", frame_skip),
            domain_rand=domain_rand,
            max_steps=NEVER,
            seed=0,
        )
        self.observation_space = gym.spaces.Box(0, 255, (camera_height, camera_width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._lane_pose: LanePose | None = None
        self._steps = 0
        self._camera: np.ndarray | None = None  # the simulator's last image, for render_view="camera"

    @property
    def simulator(self) -> Any:
        """The gym-duckietown `Simulator` underneath, for what this adapter does not show."""
        return self._sim

    @property
    def lane_pose(self) -> LanePose:
        if self._lane_pose is None:
            raise RuntimeError("call reset() before reading the lane pose")
        return self._lane_pose

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._sim.shadow_window.switch_to()  # each simulator draws in its own GL context
        # Every draw of the simulator comes from its own generator: seeding it from ours makes the episode
        # (start pose, and with domain_rand the colours, light and camera) a function of the seed.
        self._sim.seed(int(self.np_random.integers(2**31)))
        self._camera = self._sim.reset()
        self._steps = 0
        self._lane_pose = self._make_lane_pose(None, 0.0, (0.0, 0.0))
        return np.array(self._camera, dtype=np.uint8), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._lane_pose is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action: must be finite, got {action!r}")
        wheels = speed_steering_to_wheels(action) if self.action == "steering" else np.clip(action, -1, 1)
        before = np.array(self._sim.cur_pos, dtype=np.float64)
        self._sim.shadow_window.switch_to()
        self._camera = self._sim.step(wheels.astype(np.float32))[0]
        self._steps += 1
        left, right = (float(w) for w in wheels)
        self._lane_pose = self._make_lane_pose(before, self._lane_pose.distance_travelled, (left, right))
        reward = checked_reward(self._reward_fn, self._lane_pose, self._steps)
        terminated = not self._lane_pose.on_road
        truncated = self._steps >= self.max_steps and not terminated
        # One copy, the caller's; the simulator's own image stays here for render().
        return np.array(self._camera, dtype=np.uint8), reward, terminated, truncated, self._info()

    def _make_lane_pose(
        self, before: np.ndarray | None, travelled: float, wheels: tuple[float, float]
    ) -> LanePose:
        sim = self._sim
        pos, angle = np.asarray(sim.cur_pos, dtype=np.float64), float(sim.cur_angle)
        point, tangent = sim.closest_curve_point(pos, angle)
        on_road = point is not None and bool(sim._valid_pose(pos, angle))
        if point is None:  # off every lane: no lane to measure against
            dist, dot_dir, heading_error, curvature, progress = 0.0, 0.0, 0.0, 0.0, 0.0
        else:
            lane = sim.get_lane_pos2(pos, angle)
            # The simulator's dist and angle grow to the right of the lane (its comments say left; measured,
            # they are right): LanePose's grow to the left.
            dist, dot_dir, heading_error = -float(lane.dist), float(lane.dot_dir), -float(lane.angle_rad)
            progress = 0.0 if before is None else float(np.dot(pos - before, tangent))
            ahead, tangent_ahead = sim.closest_curve_point(point + CURVATURE_STEP * tangent, angle)
            turn = 0.0 if ahead is None else _heading(tangent_ahead) - _heading(tangent)
            curvature = math.remainder(turn, math.tau) / CURVATURE_STEP
        # The simulator's speed is the length of the last move, so a robot reversing along its lane would
        # earn speed·dot_dir as if it drove forward (seed 004's reward pays for it, and the −1000 run below
        # learned to reverse). LanePose's speed is signed, as LaneFollowing-v0's.
        speed = float(sim.speed)
        if before is not None and np.dot(pos - before, (math.cos(angle), 0.0, -math.sin(angle))) < 0:
            speed = -speed
        return LanePose(
            dist=dist,
            dot_dir=dot_dir,
            angle=heading_error,
            speed=speed,
            distance_travelled=travelled + progress,
            progress=progress,
            on_road=on_road,
            curvature=curvature,
            wheel_velocities=wheels,
            proximity_penalty=float(sim.proximity_penalty2(pos, angle)),
        )

    def _info(self) -> dict[str, Any]:
        return dict(vars(self.lane_pose))

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self.render_view == "camera":
            if self._camera is None:
                raise RuntimeError("call reset() before render()")
            # What the robot sees, 4 pixels a pixel: a video of the 160x120 image itself is too small to
            # watch, and 640x480 keeps a video encoder's 16-pixel blocks whole.
            image = np.asarray(self._camera, dtype=np.uint8)
            return image.repeat(CAMERA_ZOOM, axis=0).repeat(CAMERA_ZOOM, axis=1)
        self._sim.shadow_window.switch_to()
        return np.array(self._sim.render(mode="top_down"), dtype=np.uint8)

    def close(self) -> None:
        if self._sim is not None:
            self._sim.shadow_window.close()
            self._sim = None
