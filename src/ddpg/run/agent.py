"""The loop that wires environment → collector → replay → learner → logs and checkpoints.

`DDPG` is the public face: `DDPG(env, config).learn()`, `.act(obs)`, `.save(dir)`, `DDPG.load(dir)`.
It is the only place that knows every other module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.agent.fast.update import UpdateChoice, choose_update, planned_updates
from ddpg.agent.learner import Learner, LearnerSettings, TensorBatch, overestimation
from ddpg.agent.networks import build_networks
from ddpg.agent.noise import ActionNoise, schedule_factor
from ddpg.agent.normalization import ObservationNormalizer
from ddpg.config import Config, config_yaml, from_dict
from ddpg.data.collector import Collector, NonFiniteError, vector_env
from ddpg.data.nstep import NStepAggregator
from ddpg.data.prioritized import PrioritizedReplayBuffer, annealed_beta
from ddpg.data.replay import FrameReplayBuffer, ReplayBuffer
from ddpg.envs import EnvError, check_spaces
from ddpg.envs.wrappers import is_stacked_pixel_space, make_wrapped_env, wrap_env
from ddpg.files import atomic_write, discard, point_link, remove_leftovers
from ddpg.run import checkpoint as ckpt
from ddpg.run import persistence as resume
from ddpg.run.evaluation import EvalResult, evaluate
from ddpg.run.logs import (
    EVAL_COLUMNS,
    METRICS_COLUMNS,
    UPDATES_COLUMNS,
    CsvLog,
    Progress,
    TeeLog,
    TensorBoardLog,
)
from ddpg.run.resources import check_resources
from ddpg.types import ActionScale, Batch, Episode, Transition

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share a seed with training episodes
OBS_NORM = "obs_norm"  # checkpoint tensors of the observation statistics: obs_norm.mean, .var, .count


def passed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: steps advance by n_envs at a time."""
    return after // every > before // every


def _recorded_env(
    env_id: str, kwargs: dict[str, Any], config: Config, max_episode_steps: int | None
) -> gym.Env:
    """One training env as the collector needs it; module-level so subprocess envs can pickle it."""
    env = make_wrapped_env(env_id, kwargs, config, max_episode_steps=max_episode_steps)
    return resume.EpisodeRecorder(env)


def _write_summary(root: Path, summary: dict[str, Any]) -> None:
    """What a run directory gets after its last step: summary.json and plots/training.png."""
    from ddpg.run.plots import training_figure

    atomic_write(root / "summary.json", json.dumps(summary, indent=1))
    training_figure([root], root / "plots" / "training.png")


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite; the message names the step."""


class NonFiniteWarning(UserWarning):
    """A non-finite transition was skipped (`on_nonfinite: skip`)."""


class OverestimationWarning(UserWarning):
    """The critic's Q values exceed any return the rewards seen allow (given once per run)."""


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


@dataclass
class _RunFiles:
    """The open logs of a run directory."""

    root: Path
    metrics: CsvLog | TeeLog
    updates: CsvLog | TeeLog
    evals: CsvLog | TeeLog
    tensorboard: TensorBoardLog | None = None

    @staticmethod
    def open(root: Path, config: Config, step: int) -> _RunFiles:
        tb = TensorBoardLog.open(root, config.to_dict(), step) if config.tensorboard else None
        return _RunFiles(
            root,
            TeeLog(
                CsvLog(root / "metrics.csv", METRICS_COLUMNS), tb, "episode", skip=("episode", "wall_time")
            ),
            TeeLog(CsvLog(root / "updates.csv", UPDATES_COLUMNS), tb, "train"),
            TeeLog(CsvLog(root / "eval.csv", EVAL_COLUMNS), tb, "eval"),
            tb,
        )

    def close(self) -> None:
        for log in (self.metrics, self.updates, self.evals):
            log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


class DDPG:
    """A DDPG agent for one continuous-action environment."""

    def __init__(
        self,
        env: gym.Env | str | None = None,
        config: Config | None = None,
        *,
        eval_env: gym.Env | None = None,
    ) -> None:
        self.config = config = config or Config()
        seed_everything(config.seed)
        # How to make more of the same env (for evaluation): from the id given, or the env's own spec.
        self._env_recipe: tuple[str, dict[str, Any], int | None] | None = None
        if env is None or isinstance(env, str):
            env_id = env or config.env_id
            self._env_recipe = (env_id, config.env, config.max_episode_steps)
            env = make_wrapped_env(env_id, config.env, config, max_episode_steps=config.max_episode_steps)
        else:
            if env.spec is not None:
                kwargs = {k: v for k, v in env.spec.kwargs.items() if k != "render_mode"}
                self._env_recipe = (env.spec.id, kwargs, env.spec.max_episode_steps)
            env = wrap_env(env, config)
        check_spaces(env, config.env_id)
        if config.n_envs > 1 and self._env_recipe is None:
            raise EnvError("n_envs > 1 needs an environment that can be made again (an id or a spec)")
        self.env = env
        self._eval_env = wrap_env(eval_env, config) if eval_env is not None else None
        self.obs_shape = tuple(env.observation_space.shape)
        self.action_shape = tuple(env.action_space.shape)
        action_dim = int(np.prod(self.action_shape))
        check_resources(config, self.obs_shape, action_dim)
        self.scale = ActionScale(env.action_space.low, env.action_space.high)
        if config.obs_norm and is_stacked_pixel_space(env.observation_space):
            raise EnvError(
                f"obs_norm: '{config.env_id}' has pixel observations, which the encoder scales to [0, 1]"
            )
        # Raw observations go to the replay buffer; the networks see them rescaled (normalization.py).
        self.obs_norm = (
            ObservationNormalizer(self.obs_shape, config.obs_norm_clip) if config.obs_norm else None
        )
        actor, critic = build_networks(self.obs_shape, action_dim, config)
        self.learner = Learner(
            actor,
            critic,
            # Every learner setting is the config field of the same name.
            LearnerSettings(**{f.name: getattr(config, f.name) for f in dataclasses.fields(LearnerSettings)}),
            device=config.device,
        )
        self.rng = np.random.default_rng(config.seed)
        if is_stacked_pixel_space(env.observation_space):
            self.buffer = FrameReplayBuffer(
                config.buffer_size,
                self.obs_shape,
                action_dim,
                config.frame_stack,
                n_step=config.n_step,
                streams=config.n_envs,  # each env's frames chain on their own
            )
        else:
            self.buffer = ReplayBuffer(
                config.buffer_size, self.obs_shape, action_dim, store_discount=config.n_step > 1
            )
        # n-step pixel replay records every step's frames itself; the aggregator's output refers to them.
        pixel_nstep = isinstance(self.buffer, FrameReplayBuffer) and config.n_step > 1
        self._frames = self.buffer if pixel_nstep else None
        if config.prioritized:
            self.buffer = PrioritizedReplayBuffer(self.buffer, config.per_alpha, config.per_eps)
        # One n-step window per env: a window never mixes two envs' steps. No window for 1-step returns.
        windows = config.n_envs if config.n_step > 1 else 0
        self.nsteps = [NStepAggregator(config.n_step, config.gamma) for _ in range(windows)]
        self.noise = ActionNoise(config.noise, action_dim, self.rng, config.n_envs)
        self.collector: Collector | None = None
        self.step = 0
        self.updates = 0
        self.last_eval: EvalResult | None = None
        self.best_eval: float | None = None  # best mean evaluation return, kept in checkpoints/best
        self.best_step: int | None = None  # the step of that evaluation
        self._elapsed = 0.0  # wall seconds of earlier sessions of this run (resume)
        self._run_dir: Path | None = None
        self._started: float | None = None  # perf_counter at the (virtual) start of the run
        self.update_choice: UpdateChoice | None = None  # picked by learn(): compiled fast path or reference
        # The largest reward and |reward| of any step so far, which bound what Q can honestly be.
        self.reward_max, self.reward_scale = -math.inf, 0.0
        self._overestimation_warned = False

    # ------------------------------------------------------------------------------------------------
    # Acting

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy μ(s) in the environment's action units."""
        obs = self._network_input(np.asarray(obs).reshape(1, *self.obs_shape))
        return self.scale.to_env(self.learner.act(obs)[0]).reshape(self.action_shape)

    def _policy(self, obs: np.ndarray) -> np.ndarray:
        """Normalised actions for a batch of observations (one per env)."""
        return self.update_choice.act(self._network_input(obs))

    def _network_input(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the networks take them: float32, rescaled when `obs_norm` is on."""
        return self.obs_norm(obs) if self.obs_norm is not None else np.asarray(obs, dtype=np.float32)

    def _make_collector(self) -> Collector:
        """The collector over `n_envs` envs, each wrapped in the recorder that lets a checkpoint replay
        its current episode. One env runs in this process; more run in subprocesses (`vectorization:
        async`) or here one after the other (`sync`)."""
        c = self.config
        if c.n_envs == 1:
            make = [partial(resume.EpisodeRecorder, self.env)]
        else:
            env_id, kwargs, max_episode_steps = self._env_recipe
            make = [partial(_recorded_env, env_id, kwargs, c, max_episode_steps)] * c.n_envs
        envs = vector_env(make, asynchronous=c.n_envs > 1 and c.vectorization == "async")
        return Collector(envs, self.noise, self.rng, c.seed, skip_nonfinite=c.on_nonfinite == "skip")

    def close(self) -> None:
        """Close the training envs (and their subprocesses, if any) and the evaluation env."""
        if self.collector is not None:
            self.collector.close()
            self.collector = None
        if self._eval_env is not None:
            self._eval_env.close()
            self._eval_env = None

    def __enter__(self) -> DDPG:
        return self

    def __exit__(self, *exc: object) -> None:
        # Subprocess envs left to the interpreter's exit find their pipes closed and print tracebacks.
        self.close()

    # ------------------------------------------------------------------------------------------------
    # Training

    def learn(self, total_steps: int | None = None, run_dir: Path | str | None = None) -> dict[str, Any]:
        """Train until `total_steps` environment steps (default: the config's); returns the summary.

        With `run_dir`, writes the run directory contract: config.yaml, metrics.csv, updates.csv,
        eval.csv, summary.json, checkpoints/, plots/training.png and videos/.
        """
        c = self.config
        total = total_steps if total_steps is not None else c.total_steps
        root = Path(run_dir) if run_dir is not None else None
        files = None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
            atomic_write(root / "config.yaml", config_yaml(c))
            files = _RunFiles.open(root, c, self.step)
        self._run_dir = root
        if self.collector is None:
            self.collector = self._make_collector()
        if self.update_choice is None:
            planned = planned_updates(c, self.step, total)
            self.update_choice = choose_update(self.learner, c.compile, planned, c.batch_size)
        progress = Progress(total, self.step, enabled=c.progress)
        started = self._started = time.perf_counter() - self._elapsed
        eval_time = 0.0
        last_return: float | None = None
        try:
            while self.step < total:
                before = self.step
                episodes = self._collect_step()
                self.step += c.n_envs  # every env made one step
                for episode in episodes:
                    last_return = episode.ret
                    if files:
                        files.metrics.write(
                            {
                                "step": self.step,
                                "episode": episode.index,
                                "return": episode.ret,
                                "length": episode.length,
                                "wall_time": round(time.perf_counter() - started, 3),
                            }
                        )
                for _ in range(self._update_rounds(before)):
                    self._train_round(files)
                eval_due = c.eval_episodes > 0 and (
                    passed(before, self.step, c.eval_every) or self.step == total
                )
                if eval_due:
                    t0 = time.perf_counter()
                    self._evaluate_and_log(files, video=self._video_name(total) if root is not None else None)
                    eval_time += time.perf_counter() - t0
                if root is not None and c.checkpoint_every and passed(before, self.step, c.checkpoint_every):
                    self._checkpoint(root)
                if passed(before, self.step, 100) or eval_due or self.step == total:
                    elapsed = time.perf_counter() - started - eval_time
                    progress.update(
                        self.step,
                        self.step / max(elapsed, 1e-9),
                        last_return,
                        self.last_eval.mean_return if eval_due else None,
                    )
        finally:
            progress.close()
            if files:
                files.close()
        wall = time.perf_counter() - started
        summary = self._summary(total, wall, wall - eval_time)
        if root is not None:
            self._checkpoint(root)
            _write_summary(root, summary)
        return summary

    def _collect_step(self) -> list[Episode]:
        """One step of every env, stored; the episodes that ended."""
        c = self.config
        warm_up = self.step < c.learning_starts
        actions = self.collector.explore(None if warm_up else self._policy, self.step)
        try:
            result = self.collector.step(actions)
        except NonFiniteError as e:
            raise TrainingDiverged(f"{e} at step {self.step + 1}") from None
        for i in result.skipped:
            warnings.warn(
                f"the environment returned a non-finite observation or reward at step {self.step + 1}: "
                "transition skipped, episode restarted (on_nonfinite=skip)",
                NonFiniteWarning,
                stacklevel=2,
            )
            if self.nsteps:
                self.nsteps[i].clear()
        for i, transition in result.transitions:
            self._store(i, transition)
            self.reward_max = max(self.reward_max, transition.reward)
            self.reward_scale = max(self.reward_scale, abs(transition.reward))
        if self.obs_norm is not None and result.transitions:
            self.obs_norm.update(np.stack([t.obs for _, t in result.transitions]))
        return result.episodes

    def _store(self, env: int, transition: Transition) -> None:
        # `stream`: a pixel buffer chains each env's frames on their own.
        if not self.nsteps:
            t = transition
            self.buffer.add(t.obs, t.action, t.reward, t.next_obs, t.terminated, stream=env)
            return
        if self._frames is not None:
            self._frames.observe(transition.obs, transition.next_obs, stream=env)
        for t in self.nsteps[env].push(transition):
            self.buffer.add(
                t.obs,
                t.action,
                t.reward,
                t.next_obs,
                t.terminated,
                discount=t.discount,
                steps=t.steps,
                stream=env,
            )

    def _update_rounds(self, before: int) -> int:
        """Rounds of updates due for the steps after `before` up to now: one per multiple of
        `train_freq` passed at or after `learning_starts` (with one env, 1 or 0 per step)."""
        c = self.config
        if self.step < c.learning_starts or len(self.buffer) < c.batch_size:
            return 0
        return self.step // c.train_freq - max(before, c.learning_starts - 1) // c.train_freq

    def _train_round(self, files: _RunFiles | None) -> None:
        c = self.config
        if c.actor_lr_schedule.kind != "constant" or c.critic_lr_schedule.kind != "constant":
            self.learner.set_learning_rates(
                c.actor_lr * self._factor(c.actor_lr_schedule),
                c.critic_lr * self._factor(c.critic_lr_schedule),
            )
        for _ in range(c.gradient_steps):
            sample = self._sample()
            batch = TensorBatch.from_numpy(sample, self.learner.device)
            stats = self.update_choice.update(batch)
            if sample.index is not None:  # prioritized: priorities from |TD error|, a host sync per update
                self.buffer.update_priorities(sample.index, self.learner.td_abs.cpu().numpy())
            self.updates += 1
            if self.updates % c.log_every == 0:
                # The only host sync in the loop, once every `log_every` updates.
                row = {k: float(v) for k, v in stats.items()}
                if not all(np.isfinite(list(row.values()))):
                    raise TrainingDiverged(
                        f"non-finite loss at step {self.step} (update {self.updates}): "
                        f"{row}; lower the learning rates or set grad_clip_norm"
                    )
                if files:
                    files.updates.write({"step": self.step, **row})
                self._check_overestimation(row["q_mean"])

    def _check_overestimation(self, q_mean: float) -> None:
        if self._overestimation_warned:
            return
        message = overestimation(q_mean, self.reward_max, self.reward_scale, self.config.gamma)
        if message is not None:
            self._overestimation_warned = True
            warnings.warn(f"step {self.step}: {message}", OverestimationWarning, stacklevel=2)

    def _sample(self) -> Batch:
        c = self.config
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            beta = annealed_beta(c.per_beta0, self.step, c.total_steps)
            batch = self.buffer.sample(c.batch_size, self.rng, beta=beta)
        else:
            batch = self.buffer.sample(c.batch_size, self.rng)
        if self.obs_norm is None:
            return batch
        return dataclasses.replace(
            batch, obs=self.obs_norm(batch.obs), next_obs=self.obs_norm(batch.next_obs)
        )

    def _factor(self, schedule) -> float:
        t = self.step if schedule.unit == "step" else self.collector.episode
        return schedule_factor(schedule, t)

    def _video_name(self, total: int) -> str | None:
        """videos/final.mp4 at the end; step_N.mp4 at every `video_every`-th evaluation before it."""
        c = self.config
        if not c.video:
            return None
        if self.step == total:
            return "final.mp4"
        if c.video_every and (self.step // c.eval_every) % c.video_every == 0:
            return f"step_{self.step}.mp4"
        return None

    def evaluate(
        self,
        episodes: int | None = None,
        seed: int | None = None,
        video_path: Path | None = None,
        video_episodes: int | None = None,
    ) -> EvalResult:
        """Deterministic episodes on a separate env: by default the run's own evaluation (its
        `eval_episodes`, from seed + EVAL_SEED_OFFSET). A video needs `rgb_array` rendering."""
        env = self._evaluation_env(rgb=video_path is not None)
        if video_path is not None and env.render_mode != "rgb_array":
            raise EnvError(f"environment '{self.config.env_id}' cannot render rgb_array frames for a video")
        return evaluate(
            self.act,
            env,
            episodes or max(self.config.eval_episodes, 1),
            seed if seed is not None else self.config.seed + EVAL_SEED_OFFSET,
            video_path=video_path,
            video_episodes=video_episodes,
        )

    def _evaluate_and_log(self, files: _RunFiles | None, video: str | None) -> None:
        # A run whose env cannot render still trains and evaluates; it just gets no video.
        renders = "rgb_array" in self.env.metadata.get("render_modes", [])
        video_path = files.root / "videos" / video if files and video and renders else None
        self.last_eval = self.evaluate(self.config.eval_episodes, video_path=video_path, video_episodes=1)
        if files:
            files.evals.write(
                {
                    "step": self.step,
                    "mean_return": self.last_eval.mean_return,
                    "std_return": self.last_eval.std_return,
                }
            )
            self._keep_best(files.root / "checkpoints")

    def _evaluation_env(self, rgb: bool) -> gym.Env:
        if self._eval_env is not None and (not rgb or self._eval_env.render_mode == "rgb_array"):
            return self._eval_env
        if self._env_recipe is None:
            raise ValueError("pass eval_env= to DDPG for an environment without a Gymnasium spec")
        env_id, kwargs, max_episode_steps = self._env_recipe
        modes = self.env.metadata.get("render_modes", [])
        render_mode = "rgb_array" if rgb and "rgb_array" in modes else None
        self._eval_env = make_wrapped_env(
            env_id, kwargs, self.config, render_mode=render_mode, max_episode_steps=max_episode_steps
        )
        return self._eval_env

    def _summary(self, total: int, wall: float, train_wall: float) -> dict[str, Any]:
        e = self.last_eval
        return {
            "env_id": self.config.env_id,
            "seed": self.config.seed,
            "total_steps": total,
            "episodes": self.collector.episode,
            "updates": self.updates,
            "final_eval_mean_return": e.mean_return if e else None,
            "final_eval_std_return": e.std_return if e else None,
            # Kept in checkpoints/best (with a run directory): DDPG's final policy is not always its best.
            "best_eval_mean_return": self.best_eval,
            "best_eval_step": self.best_step,
            "train_steps_per_second": total / max(train_wall, 1e-9),
            "wall_time_s": wall,
            "update_path": self.update_choice.path,
            "compile_seconds": getattr(self.update_choice.update, "compile_seconds", None),
            "update_reason": self.update_choice.reason,
            "update_timings": self.update_choice.timings,  # median s per update of each path timed
        }

    # ------------------------------------------------------------------------------------------------
    # Saving and loading

    def _checkpoint(self, root: Path) -> None:
        """Write checkpoints/step_N, point checkpoints/latest at it, keep the newest few."""
        for name, module in self.learner.modules().items():
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(
                    f"non-finite {name} weights at step {self.step}; the last good checkpoint was kept"
                )
        directory = root / "checkpoints"
        name = f"step_{self.step:09d}"
        remove_leftovers(directory)
        latest = directory / "latest"
        if latest.is_symlink() and os.readlink(latest) == name:
            return  # the same step again (end of the loop): rewriting it would briefly unlink `latest`
        self.save(directory / name, training_state=True)
        point_link(latest, name)
        steps = sorted(p for p in directory.glob("step_*") if p.is_dir())
        for old in steps[: -self.config.keep_checkpoints]:
            discard(old)

    def _keep_best(self, directory: Path) -> None:
        """Weights of the best evaluation so far in checkpoints/best (a link flipped atomically)."""
        mean = self.last_eval.mean_return
        if not np.isfinite(mean) or (self.best_eval is not None and mean <= self.best_eval):
            return
        self.best_eval, self.best_step = mean, self.step
        name = f"best_step_{self.step:09d}"
        link = directory / "best"
        if link.is_symlink() and os.readlink(link) == name:
            return  # already written by the session that crashed after it
        previous = link.resolve() if link.is_symlink() else None
        self.save(directory / name)
        point_link(link, name)
        if previous is not None and previous.name != name and previous.is_dir():
            discard(previous)

    def save(self, directory: Path | str, *, training_state: bool = False) -> None:
        """Weights, target weights and optimiser states (safetensors) and metadata (JSON).

        With `training_state`, also everything `DDPG.resume` needs to continue exactly: generators,
        replay buffer, noise, the current episode and the sizes of the run's logs (docs/resume.md).
        """
        opt_tensors, opt_meta = ckpt.optimizer_state(self.learner.optimizers())
        tensors = {
            **ckpt.module_tensors(self.learner.modules()),
            **{f"opt.{k}": v for k, v in opt_tensors.items()},
        }
        if self.obs_norm is not None:
            tensors.update({f"{OBS_NORM}.{k}": torch.from_numpy(v) for k, v in self.obs_norm.state().items()})
        meta = {
            "config": self.config.to_dict(),
            "obs_shape": list(self.obs_shape),
            "action_shape": list(self.action_shape),
            "action_low": self.scale.low.tolist(),
            "action_high": self.scale.high.tolist(),
            "step": self.step,
            "updates": self.updates,
            "optimizers": opt_meta,
        }
        extra = None
        if training_state:
            if self.collector is None:
                raise ValueError("there is no training state before learn() has started")
            state, arrays, rng_tensors = resume.capture(
                self.collector, self.buffer, self.learner.device, self.nsteps
            )
            tensors.update(rng_tensors)
            meta["training"] = {
                **state,
                "best_eval": self.best_eval,
                "best_step": self.best_step,
                "rewards": [None if math.isinf(self.reward_max) else self.reward_max, self.reward_scale],
                "overestimation_warned": self._overestimation_warned,
                "last_eval": None if self.last_eval is None else self.last_eval.to_json(),
                "elapsed": self._elapsed if self._started is None else time.perf_counter() - self._started,
                "logs": resume.log_sizes(self._run_dir) if self._run_dir is not None else {},
            }

            def extra(tmp: Path) -> None:
                resume.write_arrays(tmp / resume.STATE_FILE, arrays)

        ckpt.write_checkpoint(Path(directory), tensors, meta, extra)

    @classmethod
    def load(cls, directory: Path | str, env: gym.Env | None = None, checkpoint: str = "latest") -> DDPG:
        """An agent from `save`'s directory, or from a run directory's `checkpoint`: `latest`, `best` or
        a kept `step_N`."""
        directory = Path(directory)
        checkpoints = directory / "checkpoints"
        if checkpoints.is_dir() or checkpoint != "latest":
            if Path(checkpoint).name != checkpoint or not (checkpoints / checkpoint / ckpt.MANIFEST).exists():
                kept = sorted(p.name for p in checkpoints.iterdir()) if checkpoints.is_dir() else []
                raise ckpt.CheckpointError(
                    f"{directory} has no checkpoint {checkpoint!r}; it keeps: {', '.join(kept) or 'none'}"
                )
            directory = checkpoints / checkpoint
        tensors, meta = ckpt.read_checkpoint(directory)
        return cls._from_checkpoint(directory, tensors, meta, env)

    @classmethod
    def _from_checkpoint(
        cls, directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], env: gym.Env | None
    ) -> DDPG:
        try:
            config = from_dict(meta["config"])
        except (KeyError, ValueError) as e:
            raise ckpt.CheckpointError(f"checkpoint {directory} has an unusable config: {e}") from None
        missing = [k for k in ("obs_shape", "action_shape", "step", "updates", "optimizers") if k not in meta]
        if missing:
            raise ckpt.CheckpointError(f"checkpoint {directory} has no {missing[0]} in meta.json")
        agent = cls(env, config)
        for what, mine, theirs in (
            ("observation", agent.obs_shape, meta["obs_shape"]),
            ("action", agent.action_shape, meta["action_shape"]),
        ):
            if list(mine) != list(theirs):
                raise ckpt.CheckpointError(
                    f"checkpoint {directory} is for {what} shape {tuple(theirs)}, "
                    f"the environment has {tuple(mine)}"
                )
        ckpt.load_modules(agent.learner.modules(), tensors)
        if agent.obs_norm is not None:
            state = {k: v.numpy() for k, v in ckpt.section(tensors, OBS_NORM).items()}
            try:
                agent.obs_norm.load_state(state)
            except (KeyError, ValueError) as e:
                raise ckpt.CheckpointError(
                    f"checkpoint {directory} has no usable observation statistics: {e}"
                ) from None
        opt_tensors = ckpt.section(tensors, "opt")
        ckpt.load_optimizers(agent.learner.optimizers(), opt_tensors, meta["optimizers"])
        agent.step, agent.updates = meta["step"], meta["updates"]
        agent.learner.critic_updates = agent.updates  # keeps the phase of TD3's delayed actor steps
        return agent

    def finish(self, run_dir: Path | str) -> dict[str, Any]:
        """Write what `learn` writes after its last step, summary.json and plots/training.png, for a run
        resumed at its total steps: one killed between its final checkpoint and those files."""
        c = self.config
        if self.collector is None or self.step < c.total_steps:
            raise ValueError("finish() needs a run resumed at its total_steps")
        if self.update_choice is None:
            # No update runs now: report the path the run's first session chose for this config.
            planned = planned_updates(c, 0, self.step)
            self.update_choice = choose_update(self.learner, c.compile, planned, c.batch_size)
        summary = self._summary(self.step, self._elapsed, self._elapsed)
        _write_summary(Path(run_dir), summary)
        return summary

    @classmethod
    def resume(cls, run_dir: Path | str, total_steps: int | None = None, env: gym.Env | None = None) -> DDPG:
        """The agent of `run_dir` exactly as at its latest checkpoint, ready for `learn(run_dir=run_dir)`.

        `total_steps` (default: the run's) must exceed the checkpoint's step, or equal it for a run killed
        after its final checkpoint and before its summary.json (then `finish` writes what is missing). The
        run's logs are cut back to the checkpoint, so continuing writes the same rows an uninterrupted run
        would have written.
        """
        run_dir = Path(run_dir)
        directory = run_dir / "checkpoints" / "latest"
        if not directory.exists():
            raise ckpt.CheckpointError(f"{run_dir} has no checkpoints/latest to resume from")
        tensors, meta = ckpt.read_checkpoint(directory)
        if not isinstance(meta.get("training"), dict):
            raise ckpt.CheckpointError(
                f"checkpoint {directory} holds weights only (written by save()); "
                "it can be evaluated, not resumed"
            )
        state = meta["training"]
        agent = cls._from_checkpoint(directory, tensors, meta, env)  # weights, optimisers, counters, shapes
        total = total_steps if total_steps is not None else agent.config.total_steps
        unsummarised = total == agent.step and not (run_dir / "summary.json").is_file()
        if total <= agent.step and not unsummarised:
            raise ckpt.CheckpointError(resume.finished_message(run_dir, agent.step, total))
        agent.config = agent.config.replace(total_steps=total)
        arrays = resume.read_arrays(directory / resume.STATE_FILE)
        agent.collector = agent._make_collector()
        warning = resume.restore(state, arrays, tensors, agent.collector, agent.buffer, agent.nsteps)
        try:
            agent.best_eval = None if state["best_eval"] is None else float(state["best_eval"])
            agent.best_step = state.get("best_step")  # absent from checkpoints older than it
            if state["last_eval"] is not None:
                agent.last_eval = EvalResult(state["last_eval"]["returns"], state["last_eval"]["lengths"])
            agent._elapsed = float(state["elapsed"])
            if "rewards" in state:
                high, scale = state["rewards"]
                agent.reward_max, agent.reward_scale = (
                    -math.inf if high is None else float(high),
                    float(scale),
                )
            elif len(stored := arrays.get("buffer.reward", ())):  # a checkpoint older than the warning
                # The buffer's rewards (n-step sums with n_step > 1: a looser bound, never a false alarm).
                agent.reward_max, agent.reward_scale = float(stored.max()), float(np.abs(stored).max())
            agent._overestimation_warned = bool(state.get("overestimation_warned", False))
            logs = {str(name): int(size) for name, size in state["logs"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ckpt.CheckpointError(f"the checkpoint's training state is malformed ({e!r})") from None
        resume.truncate_logs(run_dir, logs)
        if warning is not None:
            warnings.warn(warning, stacklevel=2)
        return agent
