"""The training loop: collect a step of every env, store it, update, evaluate, log, checkpoint.

It is the one place that knows every part: the collector's transitions go to the replay buffer (through
the n-step windows), the buffer's batches to the update, the update's statistics to the logs, and the
policy back to the collector. The transitions come from a source: this process's collector
(`LocalSource`), or Ray actors (`run/actors.py`'s `ActorPool`, a batch of one actor's steps at a time);
storing, the update rounds due for the steps collected, evaluations and checkpoints are the same.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from ddpg.agent.learner import TensorBatch, overestimation
from ddpg.agent.noise import schedule_factor
from ddpg.config import Schedule
from ddpg.data.collector import Collector, NonFiniteError, StepResult
from ddpg.data.prioritized import annealed_beta
from ddpg.data.replay import InPlaceSampler
from ddpg.run.evaluation import EvalResult
from ddpg.run.logs import Progress
from ddpg.run.run_dir import RunDirectory, video_name
from ddpg.types import Batch, Episode

if TYPE_CHECKING:
    from ddpg.run.agent import DDPG


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite; the message names the step."""


class NonFiniteWarning(UserWarning):
    """A non-finite transition was skipped (`on_nonfinite: skip`)."""


class OverestimationWarning(UserWarning):
    """The critic's Q values exceed any return the rewards seen allow (given once per run)."""


@dataclass(frozen=True)
class TrainingEvent:
    """What `learn(callback=...)` is given after each episode and each evaluation."""

    kind: Literal["episode", "evaluation"]
    step: int  # environment steps so far
    agent: DDPG
    episode_return: float | None = None  # the episode that ended (kind "episode")
    evaluation: EvalResult | None = None  # the evaluation just made (kind "evaluation")


def passed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]: steps advance by n_envs at a time."""
    return after // every > before // every


def sample(agent: DDPG) -> Batch:
    """A minibatch as the update takes it: importance-weighted with β annealed when prioritized, and
    observations rescaled when `obs_norm` is on (the buffer keeps them raw)."""
    c = agent.config
    # Prioritized replay's importance-weight exponent; uniform replay ignores it.
    beta = annealed_beta(c.replay.per_beta0, agent.state.step, c.loop.total_steps)
    batch = agent.buffer.sample(c.optimisation.batch_size, agent.rng, beta=beta)
    if agent.obs_norm is None:
        return batch
    return dataclasses.replace(batch, obs=agent.obs_norm(batch.obs), next_obs=agent.obs_norm(batch.next_obs))


@dataclass
class Collected:
    """What a source adds to the run at once: the transitions (by replay stream) and ended episodes,
    and the environment steps they count."""

    result: StepResult = field(default_factory=StepResult)
    steps: int = 0


class Source(Protocol):
    """Where the loop's transitions come from: `collect` the next of them (waiting for them), `report`
    the source's own figures for the logs (rows of actors.csv; none for the local collector)."""

    def collect(self) -> Collected: ...

    def report(self, step: int) -> list[dict[str, Any]]: ...


class LocalSource:
    """This process's collector: one step of every env, acting with the learner's current policy."""

    def __init__(self, agent: DDPG, collector: Collector) -> None:
        self.agent, self.collector = agent, collector

    def collect(self) -> Collected:
        agent, step = self.agent, self.agent.state.step
        warm_up = step < agent.config.exploration.learning_starts
        actions = self.collector.explore(None if warm_up else agent.policy, step)
        return Collected(self.collector.step(actions, step=step + 1), self.collector.n)

    def report(self, step: int) -> list[dict[str, Any]]:
        return []  # actors.csv is the actors' log


class Loop:
    """One call of `DDPG.learn`: runs the agent from its current step to `total`, with transitions from
    `source` (default: the agent's collector)."""

    def __init__(
        self,
        agent: DDPG,
        total: int,
        run: RunDirectory | None,
        callback: Callable[[TrainingEvent], bool | None] | None = None,
        source: Source | None = None,
    ) -> None:
        assert agent.collector is not None and agent.update_choice is not None
        self.agent, self.total, self.run, self.callback = agent, total, run, callback
        self.collector, self.update = agent.collector, agent.update_choice.update
        self.source = source if source is not None else LocalSource(agent, agent.collector)
        self.state, self.config = agent.state, agent.config
        # Uniform replay on the CPU: each update's batch is gathered into the same arrays and tensors.
        batch_size, device = self.config.optimisation.batch_size, agent.learner.device
        plain = agent.obs_norm is None  # obs_norm rescales a batch's observations into new arrays
        self.sampler = InPlaceSampler.of(agent.buffer, batch_size, device) if plain else None

    def run_until_total(self, started: float) -> float:
        """Train to `total`; returns the wall seconds spent evaluating (not training)."""
        log, state = self.config.logging, self.state
        progress = Progress(self.total, state.step, log.progress)
        eval_time, last_return = 0.0, None
        checkpoint_every = log.checkpoint_every or log.eval_every
        try:
            # A stop requested (a signal, a callback) ends the loop between two steps, where the state
            # is whole and a checkpoint can hold it.
            while state.step < self.total and not self.agent.stop_requested:
                before = state.step
                episodes = self._collect_step()
                for episode in episodes:
                    last_return = episode.ret
                    if self.run is not None:
                        self.run.episode(state.step, episode, time.perf_counter() - started)
                    self._notify(TrainingEvent("episode", state.step, self.agent, episode_return=episode.ret))
                self._update(before, episodes)
                at_eval = passed(before, state.step, log.eval_every) or state.step == self.total
                eval_due = log.eval_episodes > 0 and at_eval
                if eval_due:
                    t0 = time.perf_counter()
                    self._evaluate()
                    eval_time += time.perf_counter() - t0
                if self.run is not None and passed(before, state.step, checkpoint_every):
                    self.agent.checkpoint(self.run)
                if passed(before, state.step, 100) or eval_due or state.step == self.total:
                    elapsed = time.perf_counter() - started - eval_time
                    latest_eval = state.last_eval.mean_return if eval_due and state.last_eval else None
                    progress.update(state.step, state.step / max(elapsed, 1e-9), last_return, latest_eval)
                if at_eval:
                    self._report_source(progress)
        finally:
            progress.close()
        return eval_time

    # ------------------------------------------------------------------------------------------------
    # Collecting and storing

    def _collect_step(self) -> list[Episode]:
        """What the source collected next (one step of every env, or an actor's batch), stored and
        counted; the episodes that ended."""
        agent, state = self.agent, self.state
        try:
            collected = self.source.collect()
        except NonFiniteError as e:
            raise TrainingDiverged(f"{e} at step {state.step + 1}") from None
        result = collected.result
        for i in result.skipped:
            warnings.warn(
                f"the environment returned a non-finite observation or reward at step {state.step + 1}: "
                "transition skipped, episode restarted (on_nonfinite=skip)",
                NonFiniteWarning,
                stacklevel=2,
            )
            agent.buffer.restart(i)
        for i, transition in result.transitions:
            agent.buffer.store(transition, stream=i)
            state.reward_max = max(state.reward_max, transition.reward)
            state.reward_scale = max(state.reward_scale, abs(transition.reward))
        if agent.obs_norm is not None and result.transitions:
            agent.obs_norm.update(np.stack([t.obs for _, t in result.transitions]))
        state.step += collected.steps
        return result.episodes

    def _report_source(self, progress: Progress) -> None:
        """The source's figures (the actors': steps/s, updates/s, replay ratio, weight lag) to actors.csv
        and TensorBoard, and the totals to the progress line."""
        rows = self.source.report(self.state.step)
        if not rows:
            return
        total = rows[0]
        progress.note(
            f"{len(rows) - 1} actors: {total['steps_per_s']:.0f} steps/s, {total['updates_per_s']:.0f} "
            f"updates/s, replay ratio {total['replay_ratio']:.2f}, weight lag {total['weight_lag']}"
        )
        if self.run is not None and self.run.actors is not None:
            for row in rows:
                self.run.actors.write(row)

    # ------------------------------------------------------------------------------------------------
    # Updating

    def _update(self, before: int, episodes: list[Episode]) -> None:
        """The update rounds due for this step; with policy checkpoints, those of the assessment in
        progress, run when an episode ends it (after the checkpoint is taken, as in TD7)."""
        rule, rounds = self.agent.checkpoint_rule, self._update_rounds(before)
        if rule is None:
            for _ in range(rounds):
                self._train_round()
            return
        rule.defer(rounds)
        starts = self.config.exploration.learning_starts
        for episode in episodes:  # n_envs is 1: at most one
            if self.state.step - episode.length >= starts:  # every action was the actor's
                decision = rule.episode(episode.ret, self.state.updates)
            else:
                decision = rule.unassessed(self.state.updates)
            if decision.verdict == "checkpoint":
                self.agent.take_policy_checkpoint(decision.min_return)
            for _ in range(decision.rounds):
                self._train_round()

    def _update_rounds(self, before: int) -> int:
        """Rounds of updates due for the steps after `before` up to now: one per multiple of
        `train_freq` passed at or after `learning_starts` (with one env, 1 or 0 per step)."""
        c, step = self.config, self.state.step
        starts, train_freq = c.exploration.learning_starts, c.loop.train_freq
        if step < starts or len(self.agent.buffer) < c.optimisation.batch_size:
            return 0
        return step // train_freq - max(before, starts - 1) // train_freq

    def _train_round(self) -> None:
        opt, agent, state = self.config.optimisation, self.agent, self.state
        if opt.actor_lr_schedule.kind != "constant" or opt.critic_lr_schedule.kind != "constant":
            agent.learner.set_learning_rates(
                opt.actor_lr * self._factor(opt.actor_lr_schedule),
                opt.critic_lr * self._factor(opt.critic_lr_schedule),
            )
        for _ in range(self.config.loop.gradient_steps):
            batch, tensors = self._sample()
            stats = self.update(tensors)
            td_abs, target_update = stats.pop("td_abs"), bool(stats.pop("target_update", False))
            if batch.index is not None:  # prioritized: priorities from |TD error|, a host sync per update
                agent.buffer.update_priorities(batch.index, td_abs.cpu().numpy(), target_update)
            state.updates += 1
            if state.updates % self.config.logging.log_every == 0:
                self._log_update(stats)

    def _sample(self) -> tuple[Batch, TensorBatch]:
        if self.sampler is not None:
            return self.sampler.sample(self.agent.rng)
        batch = sample(self.agent)
        return batch, TensorBatch.from_numpy(batch, self.agent.learner.device)

    def _log_update(self, stats: dict[str, Any]) -> None:
        # The only host sync in the loop, once every `log_every` updates.
        state = self.state
        row = {k: float(v) for k, v in stats.items()}
        if not all(np.isfinite(list(row.values()))):
            raise TrainingDiverged(
                f"non-finite loss at step {state.step} (update {state.updates}): "
                f"{row}; lower the learning rates or set grad_clip_norm"
            )
        if self.run is not None:
            self.run.updates.write({"step": state.step, **row})
        if not state.overestimation_warned:
            gamma = self.config.optimisation.gamma
            message = overestimation(row["q_mean"], state.reward_max, state.reward_scale, gamma)
            if message is not None:
                state.overestimation_warned = True
                warnings.warn(f"step {state.step}: {message}", OverestimationWarning, stacklevel=2)

    def _factor(self, schedule: Schedule) -> float:
        t = self.state.step if schedule.unit == "step" else self.collector.episode
        return schedule_factor(schedule, t)

    # ------------------------------------------------------------------------------------------------
    # Evaluating

    def _evaluate(self) -> None:
        # A run whose env cannot render still trains and evaluates; it just gets no video.
        agent, state, run = self.agent, self.state, self.run
        renders = "rgb_array" in agent.env.metadata.get("render_modes", [])
        name = video_name(self.config, state.step, self.total) if run is not None and renders else None
        video = run.video_path(name) if run is not None else None
        episodes = self.config.logging.eval_episodes
        result = state.last_eval = agent.evaluate(episodes, video_path=video, video_episodes=1)
        if run is not None:
            run.evaluation(state.step, result)
            if run.keep_best(state.step, result.mean_return, state.best_eval, agent.save):
                state.best_eval, state.best_step = result.mean_return, state.step
        target = self.config.loop.stop_at_return
        if target is not None and result.mean_return >= target:
            agent.request_stop("stop_at_return")
        self._notify(TrainingEvent("evaluation", state.step, agent, evaluation=result))

    def _notify(self, event: TrainingEvent) -> None:
        """The callback, if any; False from it stops training after the current step."""
        if self.callback is not None and self.callback(event) is False:
            self.agent.request_stop("callback")
