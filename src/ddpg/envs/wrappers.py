"""Pixel wrappers: render-to-observation, resize, grayscale, frame stack and action repeat.

A pixel observation is a uint8 Box of shape (H, W, C) as environments return it. After `FrameStack`
it is channels-first, (k·C, H, W), oldest frame first: the layout the conv encoder and the frame
replay buffer expect. Frames stay uint8 all the way to the network, which scales them to [0, 1].
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, SupportsFloat

import gymnasium as gym
import numpy as np

from ddpg.envs import EnvError, make_env, shape

DEFAULT_RENDER_SIZE = 64  # side of frames rendered from a state env when frame_size is not given


class PixelSettings(Protocol):
    """The config fields the wrappers read: the `observation` section's (a `Config` has them too, as
    read-only aliases)."""

    @property
    def pixels(self) -> bool: ...
    @property
    def frame_size(self) -> int | None: ...
    @property
    def grayscale(self) -> bool: ...
    @property
    def frame_stack(self) -> int: ...
    @property
    def action_repeat(self) -> int: ...


def is_pixel_space(space: gym.Space) -> bool:
    """An image as environments return it: uint8, (H, W, C) with 1, 3 or 4 channels."""
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] in (1, 3, 4)
    )


def is_stacked_pixel_space(space: gym.Space) -> bool:
    """A channels-first stack (k·C, H, W) of uint8 frames, as `FrameStack` returns it."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def resize_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Box-filter resize of an (H, W, C) uint8 frame: each output pixel averages the block it covers."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    rows = (np.arange(height) * h) // height
    cols = (np.arange(width) * w) // width
    row_counts = np.diff(np.append(rows, h)).clip(min=1)
    col_counts = np.diff(np.append(cols, w)).clip(min=1)
    summed = np.add.reduceat(np.add.reduceat(frame.astype(np.uint32), rows, axis=0), cols, axis=1)
    counts = row_counts[:, None, None] * col_counts[None, :, None]
    return ((summed + counts // 2) // counts).astype(np.uint8)


class RenderObservation(gym.ObservationWrapper):
    """Replace the observation with `env.render()` (the env must render `rgb_array`)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise EnvError(
                f"pixels=true needs rgb_array rendering; this environment renders {env.render_mode!r} "
                f"(its modes: {env.metadata.get('render_modes', [])})"
            )
        env.reset(seed=0)
        frame = env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise EnvError("pixels=true: the environment's render() did not return an (H, W, 3) image")
        self.observation_space = gym.spaces.Box(0, 255, frame.shape, np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(self.env.render(), dtype=np.uint8)


class ResizeFrame(gym.ObservationWrapper):
    """Resize (H, W, C) frames to (size, size, C)."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        channels = shape(env.observation_space)[-1]
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, channels), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return resize_frame(observation, self.size, self.size)


class Grayscale(gym.ObservationWrapper):
    """(H, W, 3) RGB → (H, W, 1) luma (ITU-R BT.601 weights)."""

    WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        h, w = shape(env.observation_space)[:2]
        self.observation_space = gym.spaces.Box(0, 255, (h, w, 1), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        luma = observation[..., :3].astype(np.float32) @ self.WEIGHTS
        return np.rint(luma)[..., None].astype(np.uint8)


class FrameStack(gym.Wrapper):
    """The last k frames, channels-first and oldest first: (k·C, H, W).

    After a reset the stack holds k copies of the first frame, so no stack mixes two episodes.
    """

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        if k < 1:
            raise EnvError(f"frame_stack must be >= 1, got {k}")
        h, w, c = shape(env.observation_space)
        self.k = k
        self.frames: deque[np.ndarray] = deque(maxlen=k)
        self.observation_space = gym.spaces.Box(0, 255, (k * c, h, w), np.uint8)

    def _stack(self) -> np.ndarray:
        return np.concatenate(self.frames, axis=0)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        frame = np.ascontiguousarray(np.moveaxis(obs, -1, 0))
        for _ in range(self.k):
            self.frames.append(frame)
        return self._stack(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(np.ascontiguousarray(np.moveaxis(obs, -1, 0)))
        return self._stack(), reward, terminated, truncated, info


class ActionRepeat(gym.Wrapper):
    """Repeat each action k times, summing the rewards; stops early when the episode ends."""

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        if k < 1:
            raise EnvError(f"action_repeat must be >= 1, got {k}")
        self.k = k

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        total = 0.0
        for _ in range(self.k):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def wrap_env(env: gym.Env, settings: PixelSettings) -> gym.Env:
    """Apply the wrappers a config asks for. State envs only get action repeat unless `pixels` is set;
    pixel envs (detected from the observation space) are resized, optionally grayed, and stacked."""
    if settings.action_repeat > 1:
        env = ActionRepeat(env, settings.action_repeat)
    if settings.pixels and not is_pixel_space(env.observation_space):
        env = RenderObservation(env)
        if settings.frame_size is None:
            env = ResizeFrame(env, DEFAULT_RENDER_SIZE)
    if not is_pixel_space(env.observation_space):
        return env
    if settings.frame_size is not None and shape(env.observation_space)[:2] != (
        settings.frame_size,
        settings.frame_size,
    ):
        env = ResizeFrame(env, settings.frame_size)
    if settings.grayscale and shape(env.observation_space)[-1] >= 3:
        env = Grayscale(env)
    return FrameStack(env, settings.frame_stack)


def make_wrapped_env(
    env_id: str,
    kwargs: dict[str, Any] | None,
    settings: PixelSettings,
    *,
    render_mode: str | None = None,
    max_episode_steps: int | None = None,
) -> gym.Env:
    """`make_env` then `wrap_env`; pixels from a state env make it render `rgb_array`."""
    if not settings.pixels:
        env = make_env(env_id, kwargs, render_mode=render_mode, max_episode_steps=max_episode_steps)
        return wrap_env(env, settings)
    cannot = EnvError(f"environment '{env_id}' cannot render rgb_array frames, so pixels=true cannot work")
    try:
        env = make_env(env_id, kwargs, render_mode="rgb_array", max_episode_steps=max_episode_steps)
    except EnvError:
        # An env without a render_mode argument cannot render: say that, not "rejected its arguments".
        make_env(env_id, kwargs, max_episode_steps=max_episode_steps).close()
        raise cannot from None
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise cannot
    return wrap_env(env, settings)
