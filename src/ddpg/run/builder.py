"""From a config to the parts of a run: envs, networks, learner, replay, noise.

Everything here happens once, before the first step; the loop then only wires the parts together.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.agent.learner import Learner
from ddpg.agent.networks import build_networks
from ddpg.agent.noise import ActionNoise
from ddpg.agent.normalization import ObservationNormalizer
from ddpg.agent.sale import build_sale_networks
from ddpg.agent.td7 import TD7Learner
from ddpg.config import Config
from ddpg.data.collector import Collector, vector_env
from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.prioritized import PrioritizedReplayBuffer
from ddpg.data.replay import Replay, ReplayBuffer
from ddpg.envs import CheckedEnv, EnvError, check_spaces, shape
from ddpg.envs.wrappers import is_stacked_pixel_space, make_wrapped_env, wrap_env
from ddpg.run.recorder import EpisodeRecorder
from ddpg.run.resources import check_resources, replay_bytes, replay_streams, torch_device
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
            config.observation,
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
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.environment.id.split(":")[-1])
    arch = "x".join(map(str, config.networks.hidden_sizes))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    opt, noise = config.optimisation, config.exploration.noise
    return (
        f"{env}_{arch}_alr{opt.actor_lr:g}_clr{opt.critic_lr:g}_tau{opt.tau:g}_g{opt.gamma:g}"
        f"_bs{opt.batch_size}_{noise.kind}{noise.sigma:g}_s{config.loop.seed}_{stamp}"
    )


def training_env(env: gym.Env | str | None, config: Config) -> tuple[gym.Env, EnvRecipe | None]:
    """The env to train in, wrapped as the config says, and the recipe for more of it (None when an
    env instance without a Gymnasium spec was given)."""
    e = config.environment
    if env is None or isinstance(env, str):
        recipe = EnvRecipe(env or e.id, e.kwargs, e.max_episode_steps)
        env = recipe.make(config)
    else:
        recipe = None
        if env.spec is not None:
            kwargs = {k: v for k, v in env.spec.kwargs.items() if k != "render_mode"}
            recipe = EnvRecipe(env.spec.id, kwargs, env.spec.max_episode_steps)
        env = wrap_env(env, config.observation)
    check_spaces(env, e.id)
    if e.n_envs > 1 and recipe is None:
        raise EnvError("n_envs > 1 needs an environment that can be made again (an id or a spec)")
    if config.loop.actors > 0 and recipe is None:
        raise EnvError("actors need an environment that can be made again (an id or a spec)")
    return env, recipe


def build(env: gym.Env | str | None, config: Config) -> Parts:
    seed_everything(config.loop.seed)
    env, recipe = training_env(env, config)
    obs_shape = shape(env.observation_space)
    action_dim = int(np.prod(shape(env.action_space)))
    pixels = is_stacked_pixel_space(env.observation_space)
    check_resources(config, obs_shape, action_dim, pixels)
    obs = config.observation
    if obs.obs_norm and pixels:
        raise EnvError(
            f"obs_norm: '{config.environment.id}' has pixel observations, which the encoder scales to [0, 1]"
        )
    if pixels and config.algorithm.algo == "td7":
        raise EnvError(f"algo: td7 learns from states; '{config.environment.id}' has pixel observations")
    learner = _learner(obs_shape, action_dim, config)
    rng = np.random.default_rng(config.loop.seed)
    try:
        buffer = _replay(config, obs_shape, action_dim, pixels)
    except MemoryError:  # more than check_resources saw available: other processes took it meanwhile
        need = replay_bytes(config, obs_shape, action_dim, pixels)
        raise MemoryError(
            f"out of memory allocating the replay buffer (buffer_size {config.replay.buffer_size}, "
            f"{need / 2**30:.1f} GiB); lower buffer_size or free memory"
        ) from None
    return Parts(
        env=env,
        recipe=recipe,
        scale=ActionScale(*_action_bounds(env)),
        obs_norm=ObservationNormalizer(obs_shape, obs.obs_norm_clip) if obs.obs_norm else None,
        learner=learner,
        buffer=buffer,
        noise=ActionNoise(config.exploration.noise, action_dim, rng, config.environment.n_envs),
        rng=rng,
    )


def _learner(obs_shape: tuple[int, ...], action_dim: int, config: Config) -> Learner:
    device = torch_device(config.loop.device)
    if config.algorithm.algo == "td7":
        sale_actor, sale_critic, encoder = build_sale_networks(obs_shape, action_dim, config)
        return TD7Learner(sale_actor, sale_critic, encoder, config.optimisation, config.algorithm, device)
    actor, critic = build_networks(obs_shape, action_dim, config)
    return Learner(actor, critic, config.optimisation, config.algorithm, device=device)


def _action_bounds(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)  # check_spaces refused any other
    return space.low, space.high


def _replay(config: Config, obs_shape: tuple[int, ...], action_dim: int, pixels: bool) -> Replay:
    # One stream per env: its frames chain on their own, and its n-step window never mixes two envs.
    replay, streams, gamma = config.replay, replay_streams(config), config.optimisation.gamma
    ring: FrameReplayBuffer | ReplayBuffer
    if pixels:
        frame_stack = config.observation.frame_stack
        ring = FrameReplayBuffer(
            replay.buffer_size,
            obs_shape,
            action_dim,
            frame_stack,
            n_step=replay.n_step,
            streams=streams,
            gamma=gamma,
        )
    else:
        ring = ReplayBuffer(
            replay.buffer_size, obs_shape, action_dim, n_step=replay.n_step, gamma=gamma, streams=streams
        )
    algo = config.algorithm
    if algo.lap:
        return PrioritizedReplayBuffer(ring, algo.lap_alpha, min_priority=algo.lap_min_priority)
    if replay.prioritized:
        return PrioritizedReplayBuffer(ring, replay.per_alpha, replay.per_eps)
    return ring


def _recorded_env(recipe: EnvRecipe, config: Config) -> gym.Env:
    """One training env as the collector needs it; module-level so subprocess envs can pickle it."""
    return EpisodeRecorder(CheckedEnv(recipe.make(config)))


def make_collector(parts: Parts, config: Config) -> Collector:
    """The collector over `n_envs` envs, each wrapped in the recorder that lets a checkpoint replay its
    current episode. One env runs in this process; more run in subprocesses (`vectorization: async`)
    or here one after the other (`sync`)."""
    e = config.environment
    make: list[Callable[[], gym.Env]]
    if e.n_envs == 1:
        make = [partial(EpisodeRecorder, CheckedEnv(parts.env))]
    else:
        assert parts.recipe is not None  # training_env refuses n_envs > 1 without one
        make = [partial(_recorded_env, parts.recipe, config)] * e.n_envs
    # With actors these envs never step (the checkpoints hold them as they were): no subprocesses.
    asynchronous = e.n_envs > 1 and e.vectorization == "async" and config.loop.actors == 0
    envs = vector_env(make, asynchronous=asynchronous)
    return Collector(
        envs, parts.noise, parts.rng, config.loop.seed, skip_nonfinite=e.on_nonfinite == "skip", name=e.id
    )
