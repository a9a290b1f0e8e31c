"""Small environments whose every step is known, for tests."""

import builtins
from typing import Any

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """Observation = [t, episode]; terminates at t == terminate_at if set; reward = action[0]."""

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (Gymnasium declares it so)

    def __init__(self, terminate_at: int | None = None, render_mode: str | None = None):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.terminate_at = terminate_at
        self.render_mode = render_mode
        self.t = 0
        self.episode = -1

    def _obs(self):
        return np.array([self.t, self.episode], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return self._obs(), float(action[0]), terminated, False, {"t": self.t, "flag": True}

    def render(self):
        frame = np.zeros((16, 16, 3), dtype=np.uint8)
        frame[:, : self.t % 16] = 255
        return frame


class NaNEnv(CountingEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, (float("nan") if self.t == 5 else reward), terminated, truncated, info


class DiscreteEnv(CountingEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = gym.spaces.Discrete(2)


class HugeRewardEnv(CountingEnv):
    """Rewards so large that squared TD errors overflow float32: the critic loss becomes inf."""

    def step(self, action):
        obs, _reward, terminated, truncated, info = super().step(action)
        return obs, 1e30, terminated, truncated, info


class NoRenderEnv(CountingEnv):
    """Takes no render_mode and cannot render."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it so)

    def __init__(self):
        super().__init__()


class PixelEnv(CountingEnv):
    """(12, 12, 3) uint8 camera frames whose brightness is the step count."""

    def __init__(self, terminate_at: int | None = None, render_mode: str | None = None):
        super().__init__(terminate_at, render_mode)
        self.observation_space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)

    def _obs(self):
        return np.full((12, 12, 3), min(self.t * 10, 255), dtype=np.uint8)


class TaggedPixelEnv(PixelEnv):
    """(12, 12, 3) frames that say which env and which moment they show: channel 0 is 10·t, channel 1
    a tag drawn from the first seed the env was given, channel 2 the episode number. Episodes end at a
    length set by the tag, so envs stepped together start and end their episodes at different steps."""

    def __init__(self, render_mode: str | None = None):
        super().__init__(render_mode=render_mode)
        self.tag = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None and self.tag == 0:
            self.tag = seed % 250 + 1
            self.terminate_at = 4 + self.tag % 5
        return super().reset(seed=seed, options=options)

    def _obs(self):
        frame = np.empty((12, 12, 3), dtype=np.uint8)
        frame[..., 0], frame[..., 1], frame[..., 2] = self.t * 10, self.tag, self.episode % 256
        return frame


class BrokenEnv(CountingEnv):
    """Raises `error` (a builtin exception's name) in `fail_in`: init, reset, or its `at_step`-th step
    (counted over all its episodes)."""

    def __init__(self, fail_in: str = "step", error: str = "RuntimeError", at_step: int = 1, **kwargs):
        self.fail_in, self.error, self.at_step, self.steps = fail_in, error, at_step, 0
        self._fail("init")
        super().__init__(**kwargs)

    def _fail(self, call: str) -> None:
        if call == self.fail_in:
            raise getattr(builtins, self.error)("boom")

    def reset(self, *, seed=None, options=None):
        self._fail("reset")
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if self.steps == self.at_step:
            self._fail("step")
        return super().step(action)


class BadObservationEnv(CountingEnv):
    """Returns an observation its space does not allow (`bad`: shape or dtype) from `call`."""

    def __init__(self, bad: str = "shape", call: str = "step", **kwargs):
        super().__init__(**kwargs)
        self.bad, self.call = bad, call

    def _wrong(self, obs):
        return np.zeros(3, np.float32) if self.bad == "shape" else np.array(["a", "b"])

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        return (self._wrong(obs) if self.call == "reset" else obs), info

    def step(self, action):
        obs, *rest = super().step(action)
        return (self._wrong(obs) if self.call == "step" else obs), *rest


class ScalarObservationEnv(CountingEnv):
    """A 0-dimensional observation space."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (), np.float32)


def nan_reward(pose) -> float:
    return float("nan")


def progress_only_reward(pose) -> float:
    return 100.0 * pose.progress


def seven_if_given_a_lane_pose(pose) -> float:
    from ddpg.envs.lane_following import LanePose

    return 7.0 if isinstance(pose, LanePose) else float("nan")


def random_batch(seed: int, size: int, obs_dim: int, action_dim: int, p_terminal: float):
    """A reproducible minibatch of random transitions, as the learner receives it."""
    import torch

    from ddpg.agent.learner import TensorBatch
    from ddpg.types import Batch

    rng = np.random.default_rng(seed)
    f = np.float32
    batch = Batch(
        rng.normal(size=(size, obs_dim)).astype(f),
        rng.uniform(-1, 1, (size, action_dim)).astype(f),
        rng.normal(size=size).astype(f),
        rng.normal(size=(size, obs_dim)).astype(f),
        (rng.random(size) < p_terminal).astype(f),
    )
    return TensorBatch.from_numpy(batch, torch.device("cpu"))


def error_line(capsys) -> str:
    """The one `error: …` line a command printed on stderr (and nothing else there)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]
