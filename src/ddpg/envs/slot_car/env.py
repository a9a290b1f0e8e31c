"""`SlotCarRacing-v0`: drive a 1:32 slot car round a track as fast as possible without de-slotting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ddpg.config.sections import positive_int
from ddpg.envs.slot_car import physics as dyn
from ddpg.envs.slot_car.physics import CarParams, car_params
from ddpg.envs.slot_car.track import Track, make_track

if TYPE_CHECKING:  # rendering loads PIL and matplotlib only when asked for
    from ddpg.envs.slot_car.render import EgoView, TrackRenderer

OBSERVATIONS = ("minimal", "lookahead", "pixels")
ON_CRASH = ("terminate", "reset")
DEFAULT_LOOKAHEAD_M = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
# Observations of the speed are v / top speed; the headroom covers start_speed options above top speed.
SPEED_OBS_MAX = 2.0


@dataclass
class RaceState:
    """Everything that changes during an episode."""

    distance: float = 0.0  # metres driven since the start line of lap 0 (unwrapped)
    speed: float = 0.0
    time: float = 0.0  # simulated seconds, crash penalties included
    lap_start_time: float | None = 0.0  # None until the car first crosses the start line
    laps_completed: int = 0
    # inf until a lap is completed: NaN would fail Gymnasium's determinism check (NaN != NaN), and
    # inf keeps min() and comparisons meaningful.
    lap_time: float = math.inf
    best_lap_time: float = math.inf
    crashes: int = 0
    lap_times: list[float] = field(default_factory=list)


class SlotCarEnv(gym.Env):
    """A slot car on a closed track; the action is the throttle u in [-1, 1] (negative brakes).

    Keyword arguments (plain YAML values are accepted everywhere):

    track: built-in name (``oval``, ``figure8``, ``grand_prix``), a .yaml/.json file, a mapping with
        ``points``, or a list of [x, y] points in metres (see `ddpg.envs.slot_car.track.make_track`).
    observation: ``lookahead`` (default): [speed, curvature at each `lookahead` distance];
        ``minimal``: [sin, cos of the lap fraction, speed]; ``pixels``: an egocentric top-down image.
        Speed is v / top speed in [0, 2]; curvature is kappa * `curvature_scale_m`, clipped to [-1, 1].
    lookahead: distances ahead of the car, metres.
    curvature_scale_m: radius whose curvature maps to 1 (0.2 m, the tightest 1:32 bends).
    pixel_size: [height, width] (or one int) of the pixel observation; pixel_view_m: its width, metres.
    on_crash: ``terminate`` (default: the crash ends the episode, so the lost future reward shows up
        in the value target of the very transition that caused it) or ``reset`` (a marshal puts the car
        back at rest where it crashed after `crash_time_s` simulated seconds, which count in the lap).
    crash_penalty: reward subtracted at a crash, in the reward's units (one unit = one step at top speed).
    max_time_s: simulated-time limit (crash time included); ``None`` for none. max_laps: lap limit or None.
        Either limit ends the episode with ``truncated=True``.
    physics: mapping of `CarParams` fields to override. render_mode: ``rgb_array`` or ``human``;
    render_size: [height, width] (or one int) of rendered frames.
    random_start: every reset puts the car at rest at a random track position (as the reset option
        below), so training sees every bend from the first episode instead of only those before the
        first crash. unsigned_curvature: observe |curvature|; the grip does not care which way a bend
        turns, so a left-hander teaches the policy about right-handers too.

    Reward: distance progressed in the step divided by (top speed * dt), so it is at most about 1.
    ``info`` holds ``lap_time`` (last completed lap) and ``best_lap_time``, both ``inf`` until a lap is
    completed, ``laps_completed``, ``crashes``, ``speed`` (m/s), ``lateral_acceleration`` (m/s^2),
    ``track_position`` (m from the start line) and ``time`` (simulated s).
    Laps are timed between crossings of the start line; the car starts at rest on the line, so lap 1
    is a standing-start lap and later laps are flying laps. `reset` accepts
    ``options={"start_s": metres, "start_speed": m/s, "random_start": bool}``; a random start uses
    ``self.np_random`` and lap timing then begins at the first crossing of the line.
    """

    metadata: dict[str, Any] = {"render_modes": ["human", "rgb_array"], "render_fps": 60}  # noqa: RUF012 (Gymnasium declares it so)

    def __init__(
        self,
        track: Any = "oval",
        observation: str = "lookahead",
        lookahead: Sequence[float] = DEFAULT_LOOKAHEAD_M,
        curvature_scale_m: float = 0.2,
        pixel_size: int | Sequence[int] = 64,
        pixel_view_m: float = 2.0,
        on_crash: str = "terminate",
        crash_penalty: float = 5.0,
        crash_time_s: float = 2.0,
        max_time_s: float | None = 20.0,
        max_laps: int | None = None,
        physics: Mapping[str, Any] | CarParams | None = None,
        render_mode: str | None = None,
        render_size: int | Sequence[int] = 400,
        random_start: bool = False,
        unsigned_curvature: bool = False,
    ) -> None:
        self.track: Track = make_track(track)
        self.params: CarParams = car_params(physics)
        self.observation_mode = _choice("observation", observation, OBSERVATIONS)
        self.on_crash = _choice("on_crash", on_crash, ON_CRASH)
        self.render_mode = _choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.lookahead = _distances(lookahead)
        self.curvature_scale = _positive("curvature_scale_m", curvature_scale_m)
        self.crash_penalty = _non_negative("crash_penalty", crash_penalty)
        self.crash_time = _non_negative("crash_time_s", crash_time_s)
        self.max_time = None if max_time_s is None else _positive("max_time_s", max_time_s)
        self.max_laps = None if max_laps is None else positive_int("max_laps", max_laps)
        self.pixel_size = _size("pixel_size", pixel_size)
        self.pixel_view = _positive("pixel_view_m", pixel_view_m)
        self.render_size = _size("render_size", render_size)
        self.random_start = _flag("random_start", random_start)
        self.unsigned_curvature = _flag("unsigned_curvature", unsigned_curvature)
        self.top_speed = dyn.top_speed(self.params)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        # Made when first needed: pixel observations, rendering, a window.
        self._ego: EgoView | None = None
        self._renderer: TrackRenderer | None = None
        self._window: tuple[Any, Any] | None = None
        self._trail: list[tuple[float, float, float]] = []
        self.state = RaceState()

    # --- gymnasium API -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        explicit_start = "start_s" in options
        start = float(options.pop("start_s", 0.0))
        speed = float(options.pop("start_speed", 0.0))
        if options.pop("random_start", self.random_start and not explicit_start):
            start = float(self.np_random.uniform(0.0, self.track.length))
        if options:
            raise ValueError(
                f"options: unknown keys {sorted(options)}; known: start_s, start_speed, random_start"
            )
        if speed < 0:
            raise ValueError(f"options.start_speed: must be >= 0, got {speed}")
        start %= self.track.length
        self.state = RaceState(distance=start, speed=speed, lap_start_time=0.0 if start == 0.0 else None)
        self._trail = []
        if self._renderer is not None:
            self._renderer.reset()
        self._remember_trail()
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action):
        u = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1.0, 1.0))
        st, p = self.state, self.params
        before = st.distance
        h = p.dt / p.substeps
        crashed = False
        for _ in range(p.substeps):
            speed, ds = dyn.substep(st.speed, u, h, p)
            self._advance(ds, h)
            st.speed = speed
            if dyn.deslots(speed, self.track.curvature_at(st.distance), p):
                crashed = True
                break
        reward = (st.distance - before) / (self.top_speed * p.dt)
        terminated = False
        if crashed:
            st.crashes += 1
            reward -= self.crash_penalty
            if self.on_crash == "terminate":
                terminated = True
            else:
                st.speed = 0.0
                st.time += self.crash_time
        truncated = not terminated and self._out_of_time_or_laps()
        self._remember_trail()
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, truncated, self._info()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        frame = self._frame()
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window[0])
            self._window = None

    # --- simulation -----------------------------------------------------------------------------

    def _advance(self, ds: float, h: float) -> None:
        """Move the car by `ds` over `h` seconds, timing a lap when the start line is crossed."""
        st = self.state
        length = self.track.length
        lap_before = math.floor(st.distance / length)
        st.distance += ds
        if math.floor(st.distance / length) > lap_before:
            # Interpolate within the substep so lap times are not quantised to the step.
            crossing = st.time + h * ((lap_before + 1) * length - (st.distance - ds)) / ds
            if st.lap_start_time is not None:
                self._complete_lap(crossing - st.lap_start_time)
            st.lap_start_time = crossing
        st.time += h

    def _complete_lap(self, lap_time: float) -> None:
        st = self.state
        st.laps_completed += 1
        st.lap_time = lap_time
        st.lap_times.append(lap_time)
        st.best_lap_time = min(st.best_lap_time, lap_time)

    def _out_of_time_or_laps(self) -> bool:
        st = self.state
        if self.max_time is not None and st.time >= self.max_time - 1e-9:
            return True
        return self.max_laps is not None and st.laps_completed >= self.max_laps

    # --- observations and info --------------------------------------------------------------------

    def _make_observation_space(self) -> spaces.Box:
        if self.observation_mode == "pixels":
            return spaces.Box(0, 255, shape=(*self.pixel_size, 3), dtype=np.uint8)
        if self.observation_mode == "minimal":
            low = np.array([-1.0, -1.0, 0.0], dtype=np.float32)
            high = np.array([1.0, 1.0, SPEED_OBS_MAX], dtype=np.float32)
        else:
            n = len(self.lookahead)
            low = np.array([0.0] + [0.0 if self.unsigned_curvature else -1.0] * n, dtype=np.float32)
            high = np.array([SPEED_OBS_MAX] + [1.0] * n, dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    def _observation(self) -> np.ndarray:
        st = self.state
        speed = min(st.speed / self.top_speed, SPEED_OBS_MAX)
        if self.observation_mode == "pixels":
            if self._ego is None:
                from ddpg.envs.slot_car.render import EgoView

                self._ego = EgoView(self.track, self.pixel_size, self.pixel_view)
            x, y, heading = self.track.pose(st.distance)
            return self._ego.observe(x, y, heading, speed)
        if self.observation_mode == "minimal":
            angle = 2.0 * math.pi * (st.distance % self.track.length) / self.track.length
            return np.array([math.sin(angle), math.cos(angle), speed], dtype=np.float32)
        kappa = self.track.curvature(st.distance + self.lookahead) * self.curvature_scale
        if self.unsigned_curvature:
            kappa = np.abs(kappa)
        return np.concatenate([[speed], np.clip(kappa, -1.0, 1.0)]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        st = self.state
        kappa = self.track.curvature_at(st.distance)
        return {
            "lap_time": st.lap_time,
            "best_lap_time": st.best_lap_time,
            "laps_completed": st.laps_completed,
            "crashes": st.crashes,
            "speed": st.speed,
            "lateral_acceleration": dyn.lateral_acceleration(st.speed, kappa),
            "track_position": st.distance % self.track.length,
            "time": st.time,
        }

    # --- rendering --------------------------------------------------------------------------------

    def _remember_trail(self) -> None:
        if self.render_mode is None:
            return  # training runs never render; do not grow a list they never read
        x, y, _ = self.track.pose(self.state.distance)
        self._trail.append((x, y, self.state.speed / self.top_speed))

    def _frame(self) -> np.ndarray:
        from ddpg.envs.slot_car.render import TrackRenderer

        if self._renderer is None:
            self._renderer = TrackRenderer(self.track, self.render_size)
        if self._trail:
            xs, ys, fs = zip(*self._trail, strict=True)
            self._renderer.add_trail(xs, ys, fs)
            self._trail = []
        st = self.state
        x, y, heading = self.track.pose(st.distance)
        laps = f"LAP {st.laps_completed + 1}" + (f"/{self.max_laps}" if self.max_laps else "")
        running = st.time - st.lap_start_time if st.lap_start_time is not None else 0.0
        hud = (
            f"{laps}   TIME {running:5.2f} s   {st.speed:4.1f} m/s",
            f"LAST {_fmt(st.lap_time)}   BEST {_fmt(st.best_lap_time)}   CRASHES {st.crashes}",
        )
        return self._renderer.frame(x, y, heading, hud)

    def _show(self, frame: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        if self._window is None:
            fig, ax = plt.subplots()
            ax.set_axis_off()
            self._window = (fig, ax.imshow(frame))
            plt.show(block=False)
        else:
            self._window[1].set_data(frame)
        self._window[0].canvas.draw_idle()
        plt.pause(1.0 / self.metadata["render_fps"])


def _fmt(seconds: float) -> str:
    return f"{seconds:5.2f}" if math.isfinite(seconds) else "--.--"


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    return bool(value)


def _choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name}: must be one of {list(allowed)}, got {value!r}")
    return value


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    return number


def _positive(name: str, value: Any) -> float:
    number = _number(name, value)
    if number <= 0:
        raise ValueError(f"{name}: must be positive, got {value!r}")
    return number


def _non_negative(name: str, value: Any) -> float:
    number = _number(name, value)
    if number < 0:
        raise ValueError(f"{name}: must be >= 0, got {value!r}")
    return number


def _distances(value: Any) -> np.ndarray:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray) or len(value) == 0:
        raise ValueError(f"lookahead: must be a non-empty list of distances in metres, got {value!r}")
    out = np.array([_number("lookahead", v) for v in value], dtype=np.float64)
    if np.any(out < 0):
        raise ValueError(f"lookahead: distances must be >= 0, got {list(value)}")
    return out


def _size(name: str, value: Any) -> tuple[int, int]:
    dims = [value, value] if isinstance(value, int | float | str) else list(value)
    if len(dims) != 2:
        raise ValueError(f"{name}: must be one size or [height, width], got {value!r}")
    return positive_int(name, dims[0], 8), positive_int(name, dims[1], 8)
