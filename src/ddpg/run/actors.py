"""Experience collection by Ray actors (Ape-X style; docs/actors.md).

`Worker` is one Ray actor: `n_envs` envs stepped by an ordinary `Collector`, a copy of the policy, and
its own noise scale. `ActorPool` is what the loop collects from instead of the local collector: it
keeps each worker two batches of work (a batch is `actor_batch` steps of its envs, sent back as numpy
arrays through Ray's object store), hands it the learner's newest weights every `actor_sync_every` of
its steps, and turns each batch that comes back into the transitions and episodes the loop stores, logs
and updates on. A worker with two batches waiting for the learner waits too: nothing is dropped.

Workers run asynchronously, so a run with actors is not repeatable bit for bit; a run without them is
untouched by this module.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ddpg.agent.learner import run_policy
from ddpg.agent.noise import ActionNoise
from ddpg.config import Config, ConfigError, from_dict
from ddpg.data.collector import Collector, NonFiniteError, StepResult, vector_env
from ddpg.envs import CheckedEnv, EnvFailure, shape
from ddpg.run.loop import Collected
from ddpg.types import Episode, Transition

if TYPE_CHECKING:
    from ddpg.run.agent import DDPG
    from ddpg.run.builder import EnvRecipe

ACTOR_SEED_OFFSET = 10_000  # actor i's envs start from seed + (i + 1) * this: apart from training and eval
MAX_RESTARTS = 5  # Ray restarts a worker that died this many times before the run stops
IN_FLIGHT = 2  # batches asked of each worker at once: one to collect while the other travels


def actor_sigma(sigma: float, alpha: float, i: int, n: int) -> float:
    """Actor i's noise scale: Ape-X's ε_i = ε^(1 + α·i/(N−1)) for a Gaussian's σ."""
    return sigma if n == 1 or alpha == 0 else sigma ** (1 + alpha * i / (n - 1))


def _env(recipe: EnvRecipe, config: Config) -> Any:
    return CheckedEnv(recipe.make(config))


class Worker:
    """One actor: steps its envs with the policy it was last sent plus its own noise."""

    def __init__(
        self, config: dict[str, Any], recipe: EnvRecipe, policy: torch.nn.Module, index: int, n: int
    ) -> None:
        torch.set_num_threads(1)
        c = from_dict(config)
        e, noise = c.environment, c.exploration.noise
        seed = c.loop.seed + (index + 1) * ACTOR_SEED_OFFSET
        rng = np.random.default_rng([c.loop.seed, index])
        envs = vector_env([partial(_env, recipe, c)] * e.n_envs)  # in this process: the actor is one
        action_dim = int(np.prod(shape(envs.single_action_space)))
        sigma = actor_sigma(noise.sigma, c.exploration.actor_sigma_alpha, index, n)
        noise = replace(noise, sigma=sigma)
        self.collector = Collector(
            envs, ActionNoise(noise, action_dim, rng, e.n_envs), rng, seed, e.on_nonfinite == "skip", e.id
        )
        self.policy, self.version = policy.to_empty(device="cpu").eval(), -1
        self.index, self.sent = index, 0
        # A restarted worker is a new instance, and Ray tells it so: the learner counts a restart even
        # when the worker died before the learner heard from the instance before.
        import ray

        restarted = ray.is_initialized() and ray.get_runtime_context().was_current_actor_reconstructed
        self.instance = (secrets.token_hex(8), bool(restarted))

    def collect(
        self, steps: int, weights: dict[str, Any] | None, version: int, step: int, warm_up: bool
    ) -> dict:
        """`steps` steps of every env, as arrays: transitions (with their env), ended episodes, the envs
        whose step was non-finite and skipped, and the policy version that acted."""
        if weights is not None:
            self.policy.load_state_dict(weights)
            self.version = version
        elif self.version < 0 and not warm_up:  # restarted by Ray: no weights to act with yet
            return {"instance": self.instance}
        started = time.perf_counter()
        transitions: list[tuple[int, Transition]] = []
        episodes: list[Episode] = []
        skipped: list[int] = []
        policy = None if warm_up else self._act
        try:
            for _ in range(steps):  # the policy runs under inference mode (`run_policy`)
                actions = self.collector.explore(policy, step)
                result = self.collector.step(actions)
                transitions += result.transitions
                episodes += result.episodes
                skipped += result.skipped
        except NonFiniteError as e:
            return {"nonfinite": str(e), "instance": self.instance}
        except EnvFailure as e:  # said in one line by the learner, not as a Ray traceback
            return {"env_failure": str(e), "instance": self.instance}
        self.sent += len(transitions)
        # Columns of Transition's fields (numpy arrays travel through the object store without copies).
        return {
            "env": np.array([i for i, _ in transitions], dtype=np.int64),
            **{f.name: np.asarray([getattr(t, f.name) for _, t in transitions]) for f in fields(Transition)},
            "episodes": episodes,
            "skipped": skipped,
            "steps": steps * self.collector.n,
            "seconds": time.perf_counter() - started,
            "version": self.version,
            "instance": self.instance,
        }

    def _act(self, obs: np.ndarray) -> np.ndarray:
        # As DDPG.policy: float32 in (the networks take pixels as float and scale them themselves).
        return run_policy(self.policy, np.asarray(obs, dtype=np.float32), torch.device("cpu"))

    def transitions_sent(self) -> int:
        """Transitions this worker has sent since it (re)started (for tests)."""
        return self.sent


@dataclass
class ActorStats:
    """One worker's latest figures, for actors.csv."""

    steps_per_s: float = 0.0
    lag: int = 0  # learner updates since the weights that acted
    restarts: int = 0


class ActorPool:
    """The learner's side of the workers: asks for batches, hands out weights, collects the results."""

    def __init__(self, agent: DDPG, total: int) -> None:
        import ray

        c = agent.config
        n, self.n_envs = c.loop.actors, c.environment.n_envs
        cpus = ray.cluster_resources().get("CPU", 0)
        if n * c.loop.actor_cpus > cpus:
            raise ConfigError(
                f"actors ({n}) × actor_cpus ({c.loop.actor_cpus:g}) need {n * c.loop.actor_cpus:g} CPUs; "
                f"the Ray cluster has {cpus:g}: lower actors, or actor_cpus for envs that mostly wait"
            )
        self.agent, self.config, self.total, self.ray = agent, c, total, ray
        assert agent.recipe is not None  # builder refuses actors without a recipe
        # A worker that dies is restarted and its batches in flight run again on the new one.
        remote = ray.remote(Worker).options(
            num_cpus=c.loop.actor_cpus, max_restarts=MAX_RESTARTS, max_task_retries=-1
        )
        # The policy's structure without its weights (a few bytes, passed inline: Ray can restart a
        # worker from it); the first batch asked of a worker brings the weights.
        policy = copy.deepcopy(agent.learner.policy_module()).to("meta")
        self.workers: list[Any] = [remote.remote(c.to_dict(), agent.recipe, policy, i, n) for i in range(n)]
        self.stats = [ActorStats() for _ in range(n)]
        self.pending: dict[Any, tuple[int, int]] = {}  # object ref → (worker, env steps asked)
        self.requested = agent.state.step  # env steps asked of the workers so far, all together
        self.since_sync = [0] * n  # steps of each worker since it was last sent weights
        self.synced = [False] * n
        self.weights: tuple[int, Any] | None = None  # (learner updates, object ref) of the last put
        self.instances: list[str | None] = [None] * n  # each worker's process, to count restarts
        self._clock = (time.perf_counter(), agent.state.step, agent.state.updates)
        for i in range(n):
            for _ in range(IN_FLIGHT):
                self._ask(i)

    # ------------------------------------------------------------------------------------------------

    def _ask(self, i: int) -> None:
        """Give worker i its next batch, if steps are left to ask for; the weights when due."""
        per_env = min(self.config.loop.actor_batch, (self.total - self.requested) // self.n_envs)
        if per_env <= 0:
            return
        state = self.agent.state
        weights = None
        if not self.synced[i] or self.since_sync[i] >= self.config.loop.actor_sync_every:
            weights = self._weights()
            self.synced[i], self.since_sync[i] = True, 0
        self.since_sync[i] += per_env
        warm_up = state.step < self.config.exploration.learning_starts
        ref = self.workers[i].collect.remote(per_env, weights, state.updates, state.step, warm_up)
        self.pending[ref] = (i, per_env * self.n_envs)
        self.requested += per_env * self.n_envs

    def _weights(self) -> Any:
        """The policy's weights in the object store, put once per learner update that changed them."""
        updates = self.agent.state.updates
        if self.weights is None or self.weights[0] != updates:
            policy = self.agent.learner.policy_module()
            state = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
            self.weights = (updates, self.ray.put(state))
        return self.weights[1]

    def collect(self) -> Collected:
        """The next batch any worker finished (waiting for one), its worker asked for the next."""
        from ray.exceptions import RayActorError

        if not self.pending:
            raise RuntimeError("no batch is being collected: the run asked for every step already")
        refs = list(self.pending)  # in the order asked
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = self.ray.wait(refs, num_returns=1)
        done = set(ready)
        ref = next(r for r in refs if r in done)  # the oldest ready: no batch waits behind newer ones
        i, steps = self.pending.pop(ref)
        try:
            out = self.ray.get(ref)
        except RayActorError as e:  # Ray retries a worker's batches across restarts, until its last
            raise RuntimeError(f"actor {i} died after {MAX_RESTARTS} restarts: {e}") from None
        if "nonfinite" in out:
            raise NonFiniteError(f"actor {i}: {out['nonfinite']}")
        if "env_failure" in out:
            raise EnvFailure(f"actor {i}: {out['env_failure']}")
        s = self.stats[i]
        instance, restarted = out["instance"]
        if self.instances[i] not in (None, instance) or (self.instances[i] is None and restarted):
            s.restarts += 1  # a new process: the batches retried on it ran with what they were sent
        self.instances[i] = instance
        if "steps" not in out:  # restarted since its last weights: it collected nothing, ask again
            self.requested -= steps
            self.synced[i] = False
            self._ask(i)
            return Collected()
        self._ask(i)
        s.steps_per_s = out["steps"] / max(out["seconds"], 1e-9)
        s.lag = self.agent.state.updates - out["version"] if out["version"] >= 0 else 0
        return Collected(self._result(i, out), out["steps"])

    def _result(self, i: int, out: dict[str, Any]) -> StepResult:
        """The batch as the loop's StepResult: env j of worker i is stream i·n_envs + j; episodes
        numbered in the order they reach the learner, after the run's (the agent's collector's) count."""
        base, collector = i * self.n_envs, self.agent.collector
        assert collector is not None
        rows = zip(
            out["env"].tolist(), out["obs"], out["action"], out["reward"].tolist(), out["next_obs"],
            out["terminated"].tolist(), out["truncated"].tolist(), out["first"].tolist(), strict=True,
        )  # fmt: skip
        episodes = [replace(e, index=collector.episode + k) for k, e in enumerate(out["episodes"])]
        collector.episode += len(episodes)
        return StepResult(
            [(base + j, Transition(*row)) for j, *row in rows], episodes, [base + j for j in out["skipped"]]
        )

    def report(self, step: int) -> list[dict[str, Any]]:
        """Rows for actors.csv since the last report: every worker's steps/s and weight lag, and the
        totals (`actor` -1): env steps/s, updates/s and the replay ratio achieved (updates per
        transition since learning started)."""
        now, state = time.perf_counter(), self.agent.state
        t0, step0, updates0 = self._clock
        self._clock = (now, step, state.updates)
        seconds = max(now - t0, 1e-9)
        learning = max(step - self.config.exploration.learning_starts, 0)
        total = {
            "step": step,
            "actor": -1,
            "steps_per_s": (step - step0) / seconds,
            "updates_per_s": (state.updates - updates0) / seconds,
            "replay_ratio": state.updates / learning if learning else 0.0,
            "weight_lag": max((s.lag for s in self.stats), default=0),
            "restarts": sum(s.restarts for s in self.stats),
        }
        rows = [
            {"step": step, "actor": i, "steps_per_s": s.steps_per_s, "updates_per_s": 0.0,
             "replay_ratio": 0.0, "weight_lag": s.lag, "restarts": s.restarts}
            for i, s in enumerate(self.stats)
        ]  # fmt: skip
        return [total, *rows]

    def transitions_sent(self) -> int:
        """Transitions the workers say they have sent (since each last started)."""
        return sum(self.ray.get([w.transitions_sent.remote() for w in self.workers]))

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w, no_restart=True)
        self.workers = []


@contextmanager
def actor_pool(agent: DDPG, total: int, address: str | None) -> Iterator[ActorPool]:
    """The agent's workers in a Ray session, stopped after: the cluster at `address`, else the Ray this
    process already runs (`ray.init()` in a notebook), else an embedded one started here."""
    from ddpg.run.ray_session import ray_available, ray_session

    if not ray_available():
        raise ConfigError(f"actors ({agent.config.loop.actors}) need Ray: pip install 'ddpg[sweep]'")
    import ray

    with ExitStack() as stack:
        try:
            if address is not None or not ray.is_initialized():  # else the Ray this process started
                stack.enter_context(ray_session(address))
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:  # ValueError: malformed
            if address is None:
                raise
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"--address {address}: no Ray cluster answers there ({reason})") from None
        pool = agent.actors = ActorPool(agent, total)
        stack.callback(pool.close)
        try:
            yield pool
        finally:
            agent.actors = None
