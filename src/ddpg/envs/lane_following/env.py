"""LaneFollowing-v0: keep a differential-drive robot in the right lane, seeing only its camera."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import numpy as np

from ddpg.config.sections import positive_int
from ddpg.envs.lane_following.camera import (
    MIN_IMAGE_SIZE,
    CameraParams,
    GroundCamera,
    Palette,
    rasterise,
    top_down,
)
from ddpg.envs.lane_following.maps import LANE_OFFSET, ROAD_HALF_WIDTH, TILE_SIZE, RoadMap, Segment, load_map
from ddpg.envs.lane_following.rewards import LanePose, RewardFn, checked_reward, resolve_reward
from ddpg.envs.lane_following.robot import RobotParams, RobotPose, integrate, wheels_to_unicycle

START_LATERAL_NOISE = 0.03  # metres either side of the lane centre
START_HEADING_NOISE = 0.15  # radians either side of the lane direction


@dataclasses.dataclass(frozen=True)
class LaneFrame:
    """The lane at the robot's position, in the direction the robot's lane runs."""

    segment: Segment
    s: float  # arc length of the right lane along the loop, in the lane's direction
    lateral: float  # offset from the road centre line, left positive
    heading: float  # direction of the lane, radians
    curvature: float  # of the right lane's centre, left turns positive
    on_road: bool


def lane_frame(road_map: RoadMap, x: float, y: float, direction: int, fallback: Segment) -> LaneFrame:
    """Project a point onto the road; off the road, onto ``fallback`` (the last segment the robot was on)."""
    segment = road_map.segment_at(x, y)
    found = segment is not None
    segment = segment or fallback
    s_local, lateral, tx, ty, curvature = (float(v) for v in segment.project(x, y))
    s = segment.lane_starts[0] + s_local * segment.lane_factor(1)
    if direction < 0:
        lane_length = road_map.lane_lengths[segment.loop][1]
        s = lane_length - segment.lane_starts[1] - s_local * segment.lane_factor(-1)
        lateral, tx, ty, curvature = -lateral, -tx, -ty, -curvature
    # The right lane's centre is LANE_OFFSET right of the road's, so its radius differs on curves.
    lane_curvature = curvature / (1 + curvature * LANE_OFFSET)
    on_road = found and abs(lateral) <= ROAD_HALF_WIDTH
    return LaneFrame(segment, s, lateral, math.atan2(ty, tx), lane_curvature, on_road)


class LaneFollowingEnv(gym.Env[np.ndarray, np.ndarray]):
    """Duckietown-style lane following on a tile map, observed through a forward camera.

    Observation: the camera image, uint8 RGB of shape (camera_height, camera_width, 3).
    Action: left and right wheel velocities in [-1, 1] (clipped), 1 being full speed.
    Reward: ``reward(LanePose)``; the pose is also in ``info``. Leaving the road terminates the
    episode; it is truncated after ``max_steps`` steps.
    ``render()`` in ``rgb_array`` mode returns a 256-pixel top-down view of the map with the robot.
    ``reset(options={"pose": (x, y, heading)})`` places the robot; its lane is then the one whose
    direction is closest to its heading.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "human"], "render_fps": 30}  # noqa: RUF012 (Gymnasium declares it so)

    def __init__(
        self,
        map_name: str = "loop",
        camera_width: int = 64,
        camera_height: int = 64,
        reward: str | RewardFn = "default",
        max_steps: int = 500,
        domain_randomization: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: expected one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        self.max_steps = positive_int("max_steps", max_steps)
        self.road_map = load_map(map_name)
        self.robot = RobotParams()
        self.domain_randomization = domain_randomization
        self.render_mode = render_mode
        self._reward_fn = resolve_reward(reward)
        self._camera = GroundCamera(
            positive_int("camera_width", camera_width, MIN_IMAGE_SIZE),
            positive_int("camera_height", camera_height, MIN_IMAGE_SIZE),
            CameraParams(),
        )
        self._texture = rasterise(self.road_map)
        self._set_palette(Palette())
        self.observation_space = gym.spaces.Box(0, 255, (camera_height, camera_width, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pose = RobotPose(0.0, 0.0, 0.0)
        self._direction = 1
        self._frame: LaneFrame | None = None
        self._lane_pose: LanePose | None = None
        self._steps = 0
        self._figure: Any = None
        self._image_artist: Any = None

    @property
    def robot_pose(self) -> RobotPose:
        return self._pose

    @property
    def lane_pose(self) -> LanePose:
        if self._lane_pose is None:
            raise RuntimeError("call reset() before reading the lane pose")
        return self._lane_pose

    def _set_palette(self, palette: Palette) -> None:
        self._colours = palette.ground_colours()[self._texture.classes]
        self._sky = np.array(palette.sky, dtype=np.uint8)

    def _random_start(self) -> tuple[RobotPose, int]:
        straights = self.road_map.straight_segments()
        segment = straights[int(self.np_random.integers(len(straights)))]
        direction = 1 if self.np_random.random() < 0.5 else -1
        start, end = (segment.entry, segment.exit) if direction > 0 else (segment.exit, segment.entry)
        tx, ty = (end[0] - start[0]) / TILE_SIZE, (end[1] - start[1]) / TILE_SIZE
        along = self.np_random.uniform(0.2, 0.8) * TILE_SIZE
        lateral = -LANE_OFFSET + self.np_random.uniform(-START_LATERAL_NOISE, START_LATERAL_NOISE)
        heading = math.atan2(ty, tx) + self.np_random.uniform(-START_HEADING_NOISE, START_HEADING_NOISE)
        x, y = start[0] + along * tx - lateral * ty, start[1] + along * ty + lateral * tx
        pose = RobotPose(x, y, math.remainder(heading, math.tau))
        return pose, direction

    def _placed_start(self, pose: Any) -> tuple[RobotPose, int]:
        x, y, heading = (float(v) for v in pose)
        segment = self.road_map.segment_at(x, y)
        if segment is None:
            raise ValueError(f"options: pose {(x, y)} is not on a road tile")
        frame = lane_frame(self.road_map, x, y, 1, segment)
        return RobotPose(x, y, heading), 1 if math.cos(heading - frame.heading) >= 0 else -1

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.domain_randomization:
            self._set_palette(Palette().jittered(self.np_random))
        if options and "pose" in options:
            self._pose, self._direction = self._placed_start(options["pose"])
        else:
            self._pose, self._direction = self._random_start()
        self._steps = 0
        fallback = self.road_map.segment_at(self._pose.x, self._pose.y)
        assert fallback is not None  # every start is placed on a road tile
        self._frame = lane_frame(self.road_map, self._pose.x, self._pose.y, self._direction, fallback)
        self._lane_pose = self._make_lane_pose(self._frame, 0.0, 0.0, 0.0, (0.0, 0.0))
        if self.render_mode == "human":
            self.render()
        return self._observe(), self._info()

    def _make_lane_pose(
        self, frame: LaneFrame, speed: float, progress: float, travelled: float, wheels: tuple[float, float]
    ) -> LanePose:
        angle = math.remainder(self._pose.heading - frame.heading, math.tau)
        return LanePose(
            dist=frame.lateral + LANE_OFFSET,
            dot_dir=math.cos(angle),
            angle=angle,
            speed=speed,
            distance_travelled=travelled,
            progress=progress,
            on_road=frame.on_road,
            curvature=frame.curvature,
            wheel_velocities=wheels,
        )

    def _progress(self, before: LaneFrame, after: LaneFrame) -> float:
        if before.segment.loop != after.segment.loop:
            return 0.0
        length = self.road_map.lane_lengths[after.segment.loop][0 if self._direction > 0 else 1]
        # Arc length wraps round once per lap.
        return (after.s - before.s + length / 2) % length - length / 2

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._frame is None or self._lane_pose is None:
            raise RuntimeError("call reset() before step()")
        wheels = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(wheels)):
            raise ValueError(f"action: must be finite, got {action!r}")
        left, right = (float(w) for w in np.clip(wheels, -1.0, 1.0))
        speed, turn_rate = wheels_to_unicycle(left, right, self.robot)
        self._pose = integrate(self._pose, speed, turn_rate, self.robot.dt)
        self._steps += 1
        frame = lane_frame(self.road_map, self._pose.x, self._pose.y, self._direction, self._frame.segment)
        progress = self._progress(self._frame, frame)
        travelled = self._lane_pose.distance_travelled + progress
        self._frame = frame
        self._lane_pose = self._make_lane_pose(frame, speed, progress, travelled, (left, right))
        reward = checked_reward(self._reward_fn, self._lane_pose, self._steps)
        terminated = not frame.on_road
        truncated = self._steps >= self.max_steps and not terminated
        if self.render_mode == "human":
            self.render()
        return self._observe(), reward, terminated, truncated, self._info()

    def _observe(self) -> np.ndarray:
        return self._camera.render(self._texture, self._colours, self._sky, self._pose)

    def _info(self) -> dict[str, Any]:
        # Every field is a float, a bool or a tuple of floats: a shallow copy is a safe one, and
        # dataclasses.asdict's recursive deep copy took a fifth of a step (89 against 72 µs at 32x32).
        return dict(vars(self.lane_pose))

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        image = top_down(self._texture, self._colours, self._pose)
        if self.render_mode == "rgb_array":
            return image
        self._show(image)
        return None

    def _show(self, image: np.ndarray) -> None:
        import matplotlib.pyplot as plt  # only human rendering needs a display

        if self._figure is None:
            self._figure = plt.figure("LaneFollowing-v0")
            self._image_artist = self._figure.gca().imshow(image)
            self._figure.gca().set_axis_off()
        else:
            self._image_artist.set_data(image)
        plt.pause(1 / self.metadata["render_fps"])

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = None


class SpeedSteeringAction(gym.ActionWrapper):
    """Actions (speed, steering) in [-1, 1]^2; steering > 0 turns left.

    Wheels get speed - steering and speed + steering, scaled down together when one would exceed
    full speed so that the turn's curvature is kept.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return speed_steering_to_wheels(action)


def speed_steering_to_wheels(action: np.ndarray) -> np.ndarray:
    """(speed, steering) in [-1, 1]^2 to (left, right) wheel velocities, as `SpeedSteeringAction` says."""
    speed, steering = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
    wheels = np.array([speed - steering, speed + steering])
    return (wheels / max(1.0, float(np.abs(wheels).max()))).astype(np.float32)
