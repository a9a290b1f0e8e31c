"""`DDPG`, the public face: `DDPG(env, config).learn()`, `.act(obs)`, `.evaluate()`, `.save(dir)`,
`DDPG.load(dir)`, `DDPG.resume(run_dir)`.

A thin facade: builder.py makes the parts from the config, loop.py trains them, run_dir.py writes the
run directory, persistence.py owns what a checkpoint holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.agent.fast.choice import UpdateChoice, choose_update, planned_updates
from ddpg.agent.learner import run_policy
from ddpg.config import DEFAULT_PRESET, Config, resolve
from ddpg.config.sections import ConfigError, shown
from ddpg.data.collector import Collector
from ddpg.envs import EnvError, shape
from ddpg.envs.wrappers import wrap_env
from ddpg.run import persistence
from ddpg.run.builder import build, make_collector, run_name
from ddpg.run.evaluation import EvalResult, InlineVideo, evaluate
from ddpg.run.lock import RunLock
from ddpg.run.loop import Loop, NonFiniteWarning, OverestimationWarning, TrainingDiverged, TrainingEvent
from ddpg.run.persistence import TrainingState
from ddpg.run.policy_checkpoint import PolicyCheckpointRule
from ddpg.run.resources import torch_threads
from ddpg.run.run_dir import RunDirectory, RunExists, holds_a_run, release_older, write_summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ddpg.run.actors import ActorPool

__all__ = [
    "DDPG",
    "EVAL_SEED_OFFSET",
    "NonFiniteWarning",
    "OverestimationWarning",
    "RunExists",
    "TrainingDiverged",
    "TrainingEvent",
    "run_name",
]

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never share a seed with training episodes

Callback = Callable[[TrainingEvent], bool | None]  # False stops training after the current step


def config_for(env: gym.Env | str | None, config: Config | None) -> Config:
    """The config an agent runs: `config` with the environment given recorded as its `env_id`, or,
    without one, the preset of that environment (Pendulum-v1's when none is given, `default` for one
    without a preset), as `ddpg train --env ID` resolves it. An env instance without a Gymnasium spec and
    no config takes `default` too."""
    env_id = env if isinstance(env, str) else env.spec.id if env is not None and env.spec else None
    if config is None:
        return resolve(env_id) if env_id is not None or env is None else resolve(preset=DEFAULT_PRESET)
    if env_id is not None and env_id != config.environment.id:
        return config.replace(env_id=env_id)
    return config


class DDPG:
    """A DDPG agent for one continuous-action environment.

    `DDPG("MountainCarContinuous-v0")` takes that environment's preset, as `ddpg train --env` does;
    `DDPG(env, config)` runs `config` in `env`, which its config.yaml, summary and checkpoints record.
    Sets torch's intra-op threads to the config's `threads` (auto: one)."""

    def __init__(
        self,
        env: gym.Env | str | None = None,
        config: Config | None = None,
        *,
        eval_env: gym.Env | None = None,
    ) -> None:
        self.config = config = config_for(env, config)
        torch.set_num_threads(torch_threads(config.loop.threads))
        parts = build(env, config)
        self._parts = parts
        self.env, self.recipe, self.scale, self.obs_norm = (
            parts.env,
            parts.recipe,
            parts.scale,
            parts.obs_norm,
        )
        self.learner, self.buffer = parts.learner, parts.buffer
        self.noise, self.rng = parts.noise, parts.rng
        self.obs_shape = shape(self.env.observation_space)
        self.action_shape = shape(self.env.action_space)
        self._eval_env = wrap_env(eval_env, config.observation) if eval_env is not None else None
        self.collector: Collector | None = None
        self.state = TrainingState()
        self.update_choice: UpdateChoice | None = None  # picked by learn(): compiled fast path or reference
        self.run_dir: Path | None = None
        self.own_run: Path | None = None  # the run directory this agent writes (resolved), once it has one
        self._lock: RunLock | None = None  # one writer per run directory, held while it is written
        self.stop_requested = False  # set by request_stop(): learn() ends after the current step
        self.stop_reason: str | None = None  # why: "signal", "callback", "stop_at_return", "requested"
        self._started: float | None = None  # perf_counter at the (virtual) start of the run
        self._address: str | None = None  # the Ray cluster of the actors (None: an embedded Ray)
        self.actors: ActorPool | None = None  # the Ray actors collecting, while `learn` runs with them
        # Policy checkpoints (docs/algorithms.md): the rule, the checkpoint policy (the one that last
        # passed its assessment) and when it was taken (step, updates, its minimum return; saved under
        # the key `policy_checkpoint` in meta.json and summary.json).
        self.checkpoint_rule = PolicyCheckpointRule.of(config)
        self.checkpoint_policy: torch.nn.Module | None = None
        self.checkpoint_taken: dict[str, Any] | None = None

    @property
    def step(self) -> int:
        """Environment steps taken so far, all envs together."""
        return self.state.step

    @property
    def updates(self) -> int:
        return self.state.updates

    @property
    def last_eval(self) -> EvalResult | None:
        return self.state.last_eval

    @property
    def best_eval(self) -> float | None:
        return self.state.best_eval

    # ------------------------------------------------------------------------------------------------
    # Acting

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy μ(s) in the environment's action units: the shipped policy (with
        policy checkpoints, the checkpoint policy)."""
        obs = self._network_input(np.asarray(obs).reshape(1, *self.obs_shape))
        action = run_policy(self.shipped_policy(), obs, self.learner.device)
        return self.scale.to_env(action[0]).reshape(self.action_shape)

    def shipped_policy(self) -> torch.nn.Module:
        """The policy a user ships, network input → action in [−1, 1]: what `act`, `evaluate`,
        `checkpoints/best` and an export run. With policy checkpoints, the checkpoint policy once
        there is one (until then the current policy); exploration always uses the current actor."""
        if self.checkpoint_policy is not None:
            return self.checkpoint_policy
        return self.learner.policy_module()

    def take_policy_checkpoint(self, min_return: float) -> None:
        """The current policy becomes the checkpoint policy: it passed an assessment whose lowest
        episode return was `min_return`."""
        current = self.learner.policy_module()
        if self.checkpoint_policy is None:
            self.checkpoint_policy = self.learner.policy_copy()
        else:
            self.checkpoint_policy.load_state_dict(current.state_dict())
        self.checkpoint_taken = {
            "step": self.state.step,
            "updates": self.state.updates,
            "min_return": min_return,
        }

    def export(self, path: Path | str, format: str | None = None) -> Path:
        """Write the deterministic policy, raw observation → action in the env's units (obs_norm, the
        network and the action rescale inside), as `onnx`, `torchscript` or `npz` (default: from the
        suffix of `path`); docs/deploy.md runs it on a robot."""
        from ddpg.run.export import export

        return export(self, Path(path), format)

    def policy(self, obs: np.ndarray) -> np.ndarray:
        """Normalised actions for a batch of observations (one per env), on the chosen update path."""
        assert self.update_choice is not None
        return self.update_choice.act(self._network_input(obs))

    def _network_input(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the networks take them: float32, rescaled when `obs_norm` is on."""
        return self.obs_norm(obs) if self.obs_norm is not None else np.asarray(obs, dtype=np.float32)

    def make_collector(self) -> Collector:
        return make_collector(self._parts, self.config)

    def lock(self, run_dir: Path) -> None:
        """Hold `run_dir`'s lock (the one writer of it) until `learn` has written it, or `unlock`;
        raises `RunInUse` if another agent or process holds it."""
        run_dir = Path(run_dir)
        if self._lock is not None and self._lock.holds(run_dir):
            return
        if self._lock is not None:
            self._lock.release()
        self._lock = RunLock.acquire(run_dir)

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def close(self) -> None:
        """Close the training envs (and their subprocesses, if any) and the evaluation env, and let the
        run directory go."""
        self.unlock()
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

    def learn(
        self,
        total_steps: int | None = None,
        run_dir: Path | str | None = None,
        *,
        callback: Callback | None = None,
        address: str | None = None,
    ) -> dict[str, Any]:
        """Train until `total_steps` environment steps (default: the config's); returns the summary.

        With `run_dir`, writes the run directory contract: config.yaml, metrics.csv, updates.csv,
        eval.csv, summary.json, checkpoints/, plots/training.png and videos/. A directory that holds
        another run is refused (`RunExists`); this agent's own run (written by it, or resumed from it
        with `DDPG.resume`) continues.

        `callback(event)` is called after each episode and each evaluation with a `TrainingEvent`
        (step, episode return or evaluation, the agent); returning False stops training after the
        current step, with a checkpoint and the summary, as the config's `stop_at_return` does.

        With the config's `actors` > 0, Ray actors collect the transitions (docs/actors.md): in an
        embedded Ray started and stopped here, or in the cluster at `address` ("auto" or HOST:PORT); an
        `address` without actors is a ConfigError.
        """
        if address is not None and self.config.loop.actors == 0:  # else it would be ignored
            raise ConfigError(f"address {shown(address)} is for runs with actors; this config has actors: 0")
        total = total_steps if total_steps is not None else self.config.loop.total_steps
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._address = address
        if self.run_dir is None:
            return self._learn(total, None, callback)
        self.lock(self.run_dir)  # before anything is written, held while the run directory is written
        try:
            root = self.run_dir.resolve()
            if root != self.own_run and holds_a_run(self.run_dir):
                raise RunExists(self.run_dir)
            self.own_run = root
            return self._learn(total, RunDirectory(self.run_dir, self.config, self.state.step), callback)
        finally:
            self.unlock()

    def request_stop(self, reason: str = "requested") -> None:
        """End `learn` after the step in progress, with a checkpoint and the summary (a signal handler
        or a callback may call it); `reason` goes to the summary's `stop_reason`."""
        self.stop_requested = True
        self.stop_reason = self.stop_reason or reason

    def _learn(self, total: int, run: RunDirectory | None, callback: Callback | None) -> dict[str, Any]:
        c = self.config
        self.stop_requested, self.stop_reason = False, None
        if self.collector is None:
            self.collector = self.make_collector()
        if self.update_choice is None:
            planned = planned_updates(c, self.state.step, total)
            batch, kept = c.optimisation.batch_size, self.state.update
            choice = self.update_choice = choose_update(self.learner, c.loop.compile, planned, batch, kept)
            self.state.update = (choice.library, choice.reason)
        started = self._started = time.perf_counter() - self.state.elapsed
        try:
            if run is not None and not (run.checkpoints / "latest").exists():
                self.checkpoint(run)  # before the first step: a run killed at any moment can be resumed
            eval_time = self._train(total, run, callback, started)
        finally:
            if run is not None:
                run.close()
        wall = time.perf_counter() - started
        summary = self._summary(self.state.step, wall, wall - eval_time)
        if run is not None:
            self.checkpoint(run)
            write_summary(run.root, summary)
        return summary

    def _train(
        self, total: int, run: RunDirectory | None, callback: Callback | None, started: float
    ) -> float:
        """The loop, with transitions from this process's collector or from Ray actors."""
        if self.config.loop.actors == 0 or self.state.step >= total:
            return Loop(self, total, run, callback).run_until_total(started)
        from ddpg.run.actors import actor_pool

        with actor_pool(self, total, self._address) as pool:
            return Loop(self, total, run, callback, source=pool).run_until_total(started)

    def elapsed(self) -> float:
        """Wall seconds of this run so far, earlier sessions included."""
        return self.state.elapsed if self._started is None else time.perf_counter() - self._started

    def checkpoint(self, run: RunDirectory) -> None:
        """A training checkpoint in the run's checkpoints/, after checking that every weight is finite."""
        for name, module in self.learner.modules().items():
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(
                    f"non-finite {name} weights at step {self.state.step}; the last good checkpoint was kept"
                )
        log = self.config.logging
        run.checkpoint(
            self.state.step,
            log.keep_checkpoints,
            lambda d: self.save(d, training_state=True),
            persistence.drop_training_state if log.checkpoint_replay == "latest" else None,
        )

    def evaluate(
        self,
        episodes: int | None = None,
        seed: int | None = None,
        video_path: Path | str | None = None,
        video_episodes: int | None = None,
    ) -> EvalResult:
        """Deterministic episodes on a separate env: by default the run's own evaluation (its
        `eval_episodes`, from seed + EVAL_SEED_OFFSET). A video (.mp4 or .gif) needs `rgb_array`
        rendering."""
        video_path = Path(video_path) if video_path is not None else None
        env = self._evaluation_env(rgb=video_path is not None)
        if video_path is not None and env.render_mode != "rgb_array":
            raise EnvError(
                f"environment '{self.config.environment.id}' cannot render rgb_array frames for a video"
            )
        return evaluate(
            self.act,
            env,
            episodes or max(self.config.logging.eval_episodes, 1),
            seed if seed is not None else self.config.loop.seed + EVAL_SEED_OFFSET,
            video_path=video_path,
            video_episodes=video_episodes,
            name=self.config.environment.id,
        )

    def video(self, path: Path | str, episodes: int = 1, seed: int | None = None) -> InlineVideo:
        """Record `episodes` deterministic episodes to `path` (.mp4 or .gif) and return the video, which
        a notebook shows inline."""
        self.evaluate(episodes, seed, video_path=Path(path))
        return InlineVideo(Path(path))

    def _evaluation_env(self, rgb: bool) -> gym.Env:
        if self._eval_env is not None and (not rgb or self._eval_env.render_mode == "rgb_array"):
            return self._eval_env
        if self.recipe is None:
            raise ValueError("pass eval_env= to DDPG for an environment without a Gymnasium spec")
        modes = self.env.metadata.get("render_modes", [])
        self._eval_env = self.recipe.make(self.config, "rgb_array" if rgb and "rgb_array" in modes else None)
        return self._eval_env

    def _summary(self, total: int, wall: float, train_wall: float) -> dict[str, Any]:
        e, state = self.state.last_eval, self.state
        assert self.collector is not None and self.update_choice is not None
        return {
            "env_id": self.config.environment.id,
            "seed": self.config.loop.seed,
            "total_steps": total,
            "episodes": self.collector.episode,
            "updates": state.updates,
            "final_eval_mean_return": e.mean_return if e else None,
            "final_eval_std_return": e.std_return if e else None,
            # Kept in checkpoints/best (with a run directory): DDPG's final policy is not always its best.
            "best_eval_mean_return": state.best_eval,
            "best_eval_step": state.best_step,
            # What `ddpg evaluate RUN` and `DDPG.load(run)` take (persistence.SHIPPED).
            "shipped_checkpoint": "best" if state.best_step is not None else "latest",
            "train_steps_per_second": total / max(train_wall, 1e-9),
            "wall_time_s": wall,
            # What act(), evaluations and checkpoints/best run: the checkpoint policy (policy checkpoints)
            # or the current one; with the step, updates and minimum return of its assessment.
            "shipped_policy": "checkpoint" if self.checkpoint_policy is not None else "current",
            "policy_checkpoint": self.checkpoint_taken,
            "update_path": self.update_choice.path,
            "compile_seconds": getattr(self.update_choice.update, "compile_seconds", None),
            "stopped_early": self.stop_requested,  # before total_steps: `ddpg resume` continues it
            "stop_reason": self.stop_reason,  # signal, callback, stop_at_return or requested
            "update_reason": self.update_choice.reason,
            "update_timings": self.update_choice.timings,  # median s per update of each path timed
        }

    def plot(self, run_dir: Path | str | None = None) -> Figure:
        """The training figure of `run_dir` (default: the one `learn` wrote last), as a matplotlib
        Figure: a notebook shows it inline; `fig.savefig(path)` writes it. Pyplot is not touched."""
        from ddpg.run.plots import draw_training

        root = Path(run_dir) if run_dir is not None else self.run_dir
        if root is None:
            raise ValueError("plot() needs a run directory: learn(run_dir=...) first, or pass run_dir")
        return draw_training([root])

    # ------------------------------------------------------------------------------------------------
    # Saving and loading (the schema is persistence.py's)

    def save(self, directory: Path | str, *, training_state: bool = False) -> None:
        """Weights, target weights and optimiser states (safetensors) and metadata (JSON). With
        `training_state`, also everything `DDPG.resume` needs to continue exactly (docs/resume.md)."""
        persistence.save(self, Path(directory), training_state)

    @classmethod
    def load(
        cls,
        directory: Path | str,
        env: gym.Env | str | None = None,
        checkpoint: str = "shipped",
        *,
        trust: Iterable[str] = (),
        env_kwargs: dict[str, Any] | None = None,
    ) -> DDPG:
        """An agent from `save`'s directory, or from a run directory's `checkpoint`: `shipped` (the
        policy the run ships: `best`, its best evaluation's, where it has one, else `latest`), `latest`,
        `best` or a kept `step_N`.

        A checkpoint is data: when its config names code (`env_id: package.module:Class`, an env
        argument `module:function`), that code is imported only if given here too, as `env` or in
        `trust`. `env` (an id or an instance) replaces the checkpoint's environment, and `env_kwargs`
        some of its constructor's arguments (evaluating on another track, say)."""
        return persistence.load(cls, Path(directory), env, checkpoint, trust, env_kwargs)

    @classmethod
    def resume(
        cls,
        run_dir: Path | str,
        total_steps: int | None = None,
        env: gym.Env | str | None = None,
        *,
        trust: Iterable[str] = (),
    ) -> DDPG:
        """The agent of `run_dir` exactly as at its latest checkpoint, ready for `learn(run_dir=run_dir)`.

        `total_steps` (default: the run's) must exceed the checkpoint's step, or equal it for a run killed
        after its final checkpoint and before its summary.json (then `finish` writes what is missing). The
        run's logs are cut back to the checkpoint, so continuing writes the same rows an uninterrupted run
        would have written. `env` and `trust` are as for `load`.
        """
        return persistence.resume(cls, Path(run_dir), total_steps, env, trust)

    def finish(self, run_dir: Path | str) -> dict[str, Any]:
        """Write what `learn` writes after its last step, summary.json and plots/training.png, for a run
        resumed at its total steps: one killed between its final checkpoint and those files."""
        c = self.config
        if self.collector is None or self.state.step < c.loop.total_steps:
            raise ValueError("finish() needs a run resumed at its total_steps")
        if self._lock is None or not self._lock.holds(Path(run_dir)):
            raise ValueError(f"finish() needs the run this agent resumed, not {run_dir}")
        if self.update_choice is None:
            # No update runs now: report the path the run's first session chose for this config.
            planned = planned_updates(c, 0, self.state.step)
            self.update_choice = choose_update(self.learner, c.loop.compile, planned, kept=self.state.update)
        if c.logging.checkpoint_replay == "latest":  # the session killed at its final checkpoint had not
            release_older(Path(run_dir) / "checkpoints", persistence.drop_training_state)
        summary = self._summary(self.state.step, self.state.elapsed, self.state.elapsed)
        write_summary(Path(run_dir), summary)
        return summary
