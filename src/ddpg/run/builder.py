"""From a config to the parts of a run: envs, networks, learner, replay, noise.

Everything here happens once, before the first step; the loop then only wires the parts together.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.agent.learner import Learner, LearnerSettings
from ddpg.agent.networks import build_networks
from ddpg.agent.noise import ActionNoise
from ddpg.agent.normalization import ObservationNormalizer
from ddpg.config import Config
from ddpg.data.collector import Collector, vector_env
from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.prioritized import PrioritizedReplayBuffer
from ddpg.data.replay import Replay, ReplayBuffer
from ddpg.envs import EnvError, check_spaces
from ddpg.envs.wrappers import is_stacked_pixel_space, make_wrapped_env, wrap_env
from ddpg.run.recorder import EpisodeRecorder
from ddpg.run.resources import check_resources
from ddpg.types import ActionScale


@dataclass(frozen=True)
class EnvRecipe:
    """How to make more of the same env: for evaluation, and for each of `n_envs` training envs."""

    env_id: str
    kwargs: dict[str, Any]
    max_episode_steps: int | None

    def make(self, config: Config, render_mode: str | None = None) -> gym.Env:
        return make_wrapped_env(
            self.env_id,
            self.kwargs,
            config,
            render_mode=render_mode,
            max_episode_steps=self.max_episode_steps,
        )


@dataclass
class Parts:
    """What a run is made of. Raw observations go to the replay buffer; the networks see them rescaled
    by `obs_norm` when it is on."""

    env: gym.Env
    recipe: EnvRecipe | None
    scale: ActionScale
    obs_norm: ObservationNormalizer | None
    learner: Learner
    buffer: Replay
    noise: ActionNoise
    rng: np.random.Generator


def seed_everything(seed: int) -> None:
    # Third-party environments and torch's initialisers draw from the global generators.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_name(config: Config) -> str:
    """A directory name that says what ran: env, key hyper-parameters, seed and time (seed 003)."""
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env_id.split(":")[-1])
    arch = "x".join(map(str, config.hidden_sizes))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (
        f"{env}_{arch}_alr{config.actor_lr:g}_clr{config.critic_lr:g}_tau{config.tau:g}_g{config.gamma:g}"
        f"_bs{config.batch_size}_{config.noise.kind}{config.noise.sigma:g}_s{config.seed}_{stamp}"
    )


def training_env(env: gym.Env | str | None, config: Config) -> tuple[gym.Env, EnvRecipe | None]:
    """The env to train in, wrapped as the config says, and the recipe for more of it (None when an
    env instance without a Gymnasium spec was given)."""
    if env is None or isinstance(env, str):
        recipe = EnvRecipe(env or config.env_id, config.env, config.max_episode_steps)
        env = recipe.make(config)
    else:
        recipe = None
        if env.spec is not None:
            kwargs = {k: v for k, v in env.spec.kwargs.items() if k != "render_mode"}
            recipe = EnvRecipe(env.spec.id, kwargs, env.spec.max_episode_steps)
        env = wrap_env(env, config)
    check_spaces(env, config.env_id)
    if config.n_envs > 1 and recipe is None:
        raise EnvError("n_envs > 1 needs an environment that can be made again (an id or a spec)")
    return env, recipe


def build(env: gym.Env | str | None, config: Config) -> Parts:
    seed_everything(config.seed)
    env, recipe = training_env(env, config)
    obs_shape = tuple(env.observation_space.shape)
    action_dim = int(np.prod(env.action_space.shape))
    check_resources(config, obs_shape, action_dim)
    pixels = is_stacked_pixel_space(env.observation_space)
    if config.obs_norm and pixels:
        raise EnvError(
            f"obs_norm: '{config.env_id}' has pixel observations, which the encoder scales to [0, 1]"
        )
    actor, critic = build_networks(obs_shape, action_dim, config)
    # Every learner setting is the config field of the same name.
    settings = LearnerSettings(
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(LearnerSettings)}
    )
    rng = np.random.default_rng(config.seed)
    buffer = _replay(config, obs_shape, action_dim, pixels)
    return Parts(
        env=env,
        recipe=recipe,
        scale=ActionScale(env.action_space.low, env.action_space.high),
        obs_norm=ObservationNormalizer(obs_shape, config.obs_norm_clip) if config.obs_norm else None,
        learner=Learner(actor, critic, settings, device=config.device),
        buffer=buffer,
        noise=ActionNoise(config.noise, action_dim, rng, config.n_envs),
        rng=rng,
    )


def _replay(config: Config, obs_shape: tuple[int, ...], action_dim: int, pixels: bool) -> Replay:
    # One stream per env: its frames chain on their own, and its n-step window never mixes two envs.
    c = config
    ring: FrameReplayBuffer | ReplayBuffer
    if pixels:
        ring = FrameReplayBuffer(
            c.buffer_size,
            obs_shape,
            action_dim,
            c.frame_stack,
            n_step=c.n_step,
            streams=c.n_envs,
            gamma=c.gamma,
        )
    else:
        ring = ReplayBuffer(
            c.buffer_size, obs_shape, action_dim, n_step=c.n_step, gamma=c.gamma, streams=c.n_envs
        )
    return PrioritizedReplayBuffer(ring, c.per_alpha, c.per_eps) if c.prioritized else ring


def _recorded_env(recipe: EnvRecipe, config: Config) -> gym.Env:
    """One training env as the collector needs it; module-level so subprocess envs can pickle it."""
    return EpisodeRecorder(recipe.make(config))


def make_collector(parts: Parts, config: Config) -> Collector:
    """The collector over `n_envs` envs, each wrapped in the recorder that lets a checkpoint replay its
    current episode. One env runs in this process; more run in subprocesses (`vectorization: async`)
    or here one after the other (`sync`)."""
    if config.n_envs == 1:
        make = [partial(EpisodeRecorder, parts.env)]
    else:
        assert parts.recipe is not None  # training_env refuses n_envs > 1 without one
        make = [partial(_recorded_env, parts.recipe, config)] * config.n_envs
    envs = vector_env(make, asynchronous=config.n_envs > 1 and config.vectorization == "async")
    return Collector(envs, parts.noise, parts.rng, config.seed, skip_nonfinite=config.on_nonfinite == "skip")
