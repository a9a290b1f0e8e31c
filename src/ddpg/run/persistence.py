"""The checkpoint schema, in one place: what a checkpoint holds and how it is read back.

Every checkpoint has the networks, their targets and the optimisers (`model.safetensors`: every module
of `Learner.modules()` and optimiser of `Learner.optimizers()` under its name; TD7's add its encoder,
fixed encoder, fixed target encoder, value-clipping range and encoder optimiser) and what
`load` needs to rebuild the agent (`meta.json`: the config, shapes, action bounds, counters). A training
checkpoint also holds what an exact resume needs (`meta.json`'s `training` and `state.npz`): every
random generator (Python's `random`, numpy's legacy global, the agent's `np.random.Generator`,
torch's CPU and CUDA generators, the environment's `np_random` and its spaces'), the replay ring
exactly as laid out in memory, the n-step windows, the exploration-noise state, the current episode
(replayed, see recorder.py), the loop's counters (`TrainingState`) and how many bytes each CSV log had.
With policy checkpoints on, every checkpoint holds the checkpoint policy (`policy_checkpoint.*`
tensors, and when it was taken in meta.json) and a training checkpoint the rule's state as well.
checkpoint.py is the container (safetensors + JSON + a manifest, written atomically); this module is
the only one that knows the names inside it.
"""

from __future__ import annotations

import math
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.config import Config, ConfigError, flatten, from_dict, load_config
from ddpg.data.collector import Collector
from ddpg.data.replay import Replay
from ddpg.run import checkpoint as ckpt
from ddpg.run.checkpoint import CheckpointError, section, verify
from ddpg.run.evaluation import EvalResult
from ddpg.run.recorder import from_json, global_rng_state, restore_generator, set_global_rng_state, to_json
from ddpg.run.run_dir import LOCK_FILE, WRITTEN, step_checkpoint

if TYPE_CHECKING:
    from ddpg.run.agent import DDPG

STATE_FILE = "state.npz"
RNG = "rng."  # the tensors of torch's generators, which only resuming reads
LOG_FILES = ("metrics.csv", "updates.csv", "eval.csv", "actors.csv")
OBS_NORM = "obs_norm"  # checkpoint tensors of the observation statistics: obs_norm.mean, .var, .count
POLICY_CHECKPOINT = "policy_checkpoint"  # the checkpoint policy's tensors; meta.json: when it was taken
REQUIRED_META = ("obs_shape", "action_shape", "step", "updates", "optimizers")
# A value that makes an environment import code: `package.module:ClassName` or `module:function`.
NAMED_CODE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def named_code(config: Config) -> list[str]:
    """What the config would import: its env_id and env keyword values of the form `module:attribute`."""
    env = config.environment
    values = [env.id, *(v for v in env.kwargs.values() if isinstance(v, str))]
    return [v for v in values if NAMED_CODE.fullmatch(v)]


def check_trusted(directory: Path, config: Config, trust: Iterable[str]) -> None:
    """A run directory is data: the code it names is imported only when the user names it too."""
    untrusted = [code for code in named_code(config) if code not in set(trust)]
    if untrusted:
        code = untrusted[0]
        how = f"--env {code}" if code == config.environment.id else f"--trust {code}"
        raise CheckpointError(
            f"{directory} names code to import ({code}); ddpg imports nothing a run directory names "
            f"unless you name it too: pass {how} if you trust it"
        )


@dataclass
class TrainingState:
    """What the loop counts and checkpoints carry: steps, updates, evaluations, the reward range."""

    step: int = 0
    updates: int = 0
    last_eval: EvalResult | None = None
    best_eval: float | None = None  # best mean evaluation return, kept in checkpoints/best
    best_step: int | None = None  # the step of that evaluation
    elapsed: float = 0.0  # wall seconds of earlier sessions of this run (resume)
    # The largest reward and |reward| of any step so far, which bound what Q can honestly be.
    reward_max: float = -math.inf
    reward_scale: float = 0.0
    overestimation_warned: bool = False
    # UpdateChoice's (library, reason), kept so that a resumed run rounds as the first session did.
    update: tuple[str, str] | None = None

    def to_json(self, elapsed: float) -> dict[str, Any]:
        return {
            "best_eval": self.best_eval,
            "best_step": self.best_step,
            "rewards": [None if math.isinf(self.reward_max) else self.reward_max, self.reward_scale],
            "overestimation_warned": self.overestimation_warned,
            "update": None if self.update is None else list(self.update),
            "last_eval": None if self.last_eval is None else self.last_eval.to_json(),
            "elapsed": elapsed,
        }

    def load_json(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.best_eval = None if state["best_eval"] is None else float(state["best_eval"])
        self.best_step = state.get("best_step")  # absent from checkpoints older than it
        if state["last_eval"] is not None:
            self.last_eval = EvalResult(state["last_eval"]["returns"], state["last_eval"]["lengths"])
        self.elapsed = float(state["elapsed"])
        if "rewards" in state:
            high, scale = state["rewards"]
            self.reward_max, self.reward_scale = -math.inf if high is None else float(high), float(scale)
        elif len(stored := arrays.get("buffer.reward", np.zeros(0))):  # a checkpoint older than the warning
            # The buffer's rewards (n-step sums with n_step > 1: a looser bound, never a false alarm).
            self.reward_max, self.reward_scale = float(stored.max()), float(np.abs(stored).max())
        self.overestimation_warned = bool(state.get("overestimation_warned", False))
        update = state.get("update")  # absent from checkpoints older than the timed choice
        if isinstance(update, list) and len(update) == 2 and update[0] in ("reference", "linear", "onednn"):
            self.update = (str(update[0]), str(update[1]))


# ---------------------------------------------------------------------------------------------------
# Saving and loading an agent.


def save(agent: DDPG, directory: Path, training_state: bool = False) -> None:
    """Weights, target weights and optimiser states (safetensors) and metadata (JSON); with
    `training_state`, everything `resume` needs to continue exactly (docs/resume.md)."""
    learner = agent.learner
    opt_tensors, opt_meta = ckpt.optimizer_state(learner.optimizers())
    tensors = {**ckpt.module_tensors(learner.modules()), **{f"opt.{k}": v for k, v in opt_tensors.items()}}
    if agent.obs_norm is not None:
        tensors.update({f"{OBS_NORM}.{k}": torch.from_numpy(v) for k, v in agent.obs_norm.state().items()})
    if agent.checkpoint_policy is not None:
        tensors.update(ckpt.module_tensors({POLICY_CHECKPOINT: agent.checkpoint_policy}))
    meta: dict[str, Any] = {
        "config": agent.config.to_dict(),
        "obs_shape": list(agent.obs_shape),
        "action_shape": list(agent.action_shape),
        "action_low": agent.scale.low.tolist(),
        "action_high": agent.scale.high.tolist(),
        "step": agent.state.step,
        "updates": agent.state.updates,
        "optimizers": opt_meta,
    }
    if agent.checkpoint_taken is not None:
        meta[POLICY_CHECKPOINT] = agent.checkpoint_taken
    extra = None
    if training_state:
        if agent.collector is None:
            raise ValueError("there is no training state before learn() has started")
        state, arrays, rng_tensors = capture(agent.collector, agent.buffer, learner.device)
        tensors.update(rng_tensors)
        meta["training"] = {
            **state,
            **agent.state.to_json(agent.elapsed()),
            "logs": log_sizes(agent.run_dir) if agent.run_dir is not None else {},
        }
        if agent.checkpoint_rule is not None:
            meta["training"]["policy_checkpoints"] = agent.checkpoint_rule.to_json()

        def extra(tmp: Path) -> None:
            write_arrays(tmp / STATE_FILE, arrays)

    ckpt.write_checkpoint(Path(directory), tensors, meta, extra)


def drop_training_state(directory: Path) -> None:
    """Make a training checkpoint weights-only, as `save()` writes them: what `checkpoint_replay: latest`
    does to a step checkpoint once a newer one is `latest`. Rewritten whole, so a kill leaves either
    version (a kill between the two renames, the old one under a temporary name, which the next
    checkpoint puts back)."""
    if not (directory / STATE_FILE).exists():
        return
    try:
        tensors, meta = ckpt.read_checkpoint(directory)
    except CheckpointError as e:  # an old checkpoint gone bad is no reason to stop training
        warnings.warn(f"{e}; it keeps its training state", stacklevel=2)
        return
    meta.pop("training", None)
    ckpt.write_checkpoint(directory, {k: v for k, v in tensors.items() if not k.startswith(RNG)}, meta)


# The checkpoint a run ships (what `ddpg evaluate RUN`, `ddpg export RUN` and `DDPG.load(run)` take):
# `best`, the policy of its best evaluation, where it has one, else `latest`. On every run of ours whose
# `best` and `latest` were both re-evaluated on 100 fresh episodes, `best` did as well or better
# (docs/BENCHMARKS.md, "The shipped policy"); the final policy is wherever the last updates left it.
SHIPPED = "shipped"


def shipped_checkpoint(directory: Path) -> str:
    """The checkpoint `SHIPPED` names in run directory `directory`: best, or latest where there is none."""
    best = directory / "checkpoints" / "best" / ckpt.MANIFEST
    return "best" if best.exists() else "latest"


def checkpoint_directory(directory: Path, checkpoint: str) -> Path:
    """`save`'s directory itself, or a run directory's `checkpoint`: shipped, latest, best or a kept
    step_N."""
    if checkpoint == SHIPPED:
        checkpoint = shipped_checkpoint(directory)
    checkpoints = directory / "checkpoints"
    if not checkpoints.is_dir() and checkpoint == "latest":
        return directory
    given = checkpoint
    numbered = re.fullmatch(r"(best_)?step_([0-9]+)", checkpoint)
    if numbered:  # step_300 names step_000000300, as a video's name step_300.mp4 does
        checkpoint = (numbered[1] or "") + step_checkpoint(int(numbered[2]))
    if Path(checkpoint).name != checkpoint or not (checkpoints / checkpoint / ckpt.MANIFEST).exists():
        # Only what loads: not a link whose checkpoint is gone, nor a kill's work in progress.
        found = checkpoints.iterdir() if checkpoints.is_dir() else ()
        kept = sorted(p.name for p in found if not p.name.startswith(".") and (p / ckpt.MANIFEST).exists())
        raise CheckpointError(
            f"{directory} has no checkpoint {given!r}; it keeps: {', '.join(kept) or 'none'}"
        )
    return checkpoints / checkpoint


def load(
    cls: type[DDPG],
    directory: Path,
    env: gym.Env | str | None,
    checkpoint: str,
    trust: Iterable[str],
    env_kwargs: dict[str, Any] | None = None,
) -> DDPG:
    directory = checkpoint_directory(directory, checkpoint)
    tensors, meta = ckpt.read_checkpoint(directory)
    return _from_checkpoint(cls, directory, tensors, meta, env, trust, env_kwargs or {})


def _from_checkpoint(
    cls: type[DDPG],
    directory: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    env: gym.Env | str | None,
    trust: Iterable[str],
    env_kwargs: dict[str, Any] | None = None,
) -> DDPG:
    """An agent with the checkpoint's config, weights, optimisers and counters. `env`, an id or an
    instance, replaces the checkpoint's and `env_kwargs` some of its arguments (another track, another
    gravity); code the config names is imported only if in `trust` or given by the caller."""
    try:
        config = from_dict(meta["config"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {directory} has an unusable config: {e}") from None
    config = _with_env(directory, config, env, trust, env_kwargs)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {directory} has no {missing[0]} in meta.json")
    agent = cls(env, config)
    for what, mine, theirs in (
        ("observation", agent.obs_shape, meta["obs_shape"]),
        ("action", agent.action_shape, meta["action_shape"]),
    ):
        if list(mine) != list(theirs):
            raise CheckpointError(
                f"checkpoint {directory} is for {what} shape {tuple(theirs)}, "
                f"the environment has {tuple(mine)}"
            )
    ckpt.load_modules(agent.learner.modules(), tensors)
    if agent.obs_norm is not None:
        try:
            agent.obs_norm.load_state({k: v.numpy() for k, v in section(tensors, OBS_NORM).items()})
        except (KeyError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {directory} has no usable observation statistics: {e}"
            ) from None
    ckpt.load_optimizers(agent.learner.optimizers(), section(tensors, "opt"), meta["optimizers"])
    if POLICY_CHECKPOINT in meta:
        _load_checkpoint_policy(agent, directory, tensors, meta[POLICY_CHECKPOINT])
    agent.state.step, agent.state.updates = meta["step"], meta["updates"]
    agent.learner.critic_updates = meta["updates"]  # the phase of delayed actor steps and td7 target updates
    return agent


def _with_env(
    where: Path,
    config: Config,
    env: gym.Env | str | None,
    trust: Iterable[str],
    env_kwargs: dict[str, Any] | None = None,
) -> Config:
    """`config` with the env the caller gives (an id replaces the recorded one and is trusted, as are
    the strings among `env_kwargs`, which replace some of its arguments), after checking that any other
    code it names is trusted: a run directory is data."""
    if isinstance(env, str):
        config, trust = config.replace(env_id=env), [*trust, env]
    if env_kwargs:
        given = [v for v in env_kwargs.values() if isinstance(v, str)]
        config, trust = config.replace(env={**config.environment.kwargs, **env_kwargs}), [*trust, *given]
    if not isinstance(env, gym.Env):
        check_trusted(where, config, trust)
    return config


def _restart(
    cls: type[DDPG], run_dir: Path, total_steps: int | None, env: gym.Env | str | None, trust: Iterable[str]
) -> DDPG:
    """A run killed before its first checkpoint (written before its first step) has trained nothing: it
    resumes from the start, with its config.yaml, which is what an uninterrupted run did. What the
    killed start wrote besides config.yaml is removed once the run is locked."""
    path = run_dir / "config.yaml"
    if not path.is_file() or (run_dir / "summary.json").exists():
        raise CheckpointError(f"{run_dir} has no checkpoints/latest to resume from")
    try:
        config = load_config(path)
    except ConfigError as e:
        raise CheckpointError(f"{e}; {run_dir} has no checkpoint to resume from either") from None
    config = _with_env(run_dir, config, env, trust)
    if total_steps is not None:
        config = config.replace(total_steps=total_steps)
    agent = cls(env, config)
    try:
        agent.lock(run_dir)
        for entry in run_dir.iterdir():
            if entry.name in ("config.yaml", LOCK_FILE) or not any(entry.match(w) for w in WRITTEN):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    except BaseException:
        agent.close()
        raise
    agent.own_run = run_dir.resolve()
    return agent


def _load_checkpoint_policy(
    agent: DDPG, directory: Path, tensors: dict[str, torch.Tensor], taken: dict[str, Any]
) -> None:
    """The checkpoint policy (policy checkpoints), which `act` then runs: a copy of the policy's
    module with the saved weights."""
    if not section(tensors, POLICY_CHECKPOINT) or not isinstance(taken, dict):
        raise CheckpointError(f"checkpoint {directory} names a checkpoint policy but holds no usable one")
    policy = agent.learner.policy_copy()
    ckpt.load_modules({POLICY_CHECKPOINT: policy}, tensors)
    agent.checkpoint_policy, agent.checkpoint_taken = policy, dict(taken)


def resume(
    cls: type[DDPG], run_dir: Path, total_steps: int | None, env: gym.Env | str | None, trust: Iterable[str]
) -> DDPG:
    """The agent of `run_dir` exactly as at its latest checkpoint (see `DDPG.resume`)."""
    directory = run_dir / "checkpoints" / "latest"
    if not directory.exists():
        return _restart(cls, run_dir, total_steps, env, trust)
    tensors, meta = ckpt.read_checkpoint(directory)
    if not isinstance(meta.get("training"), dict):
        raise CheckpointError(
            f"checkpoint {directory} holds weights only (written by save()); it can be evaluated, not resumed"
        )
    state = meta["training"]
    agent = _from_checkpoint(cls, directory, tensors, meta, env, trust)  # refuses untrusted code first
    try:
        changes = config_changes(run_dir, from_dict(meta["config"]), env_given=isinstance(env, str))
    except BaseException:
        agent.close()
        raise
    step = agent.state.step
    edited_total = changes.pop("total_steps", None)
    if total_steps is None:
        total_steps = edited_total
    total = total_steps if total_steps is not None else agent.config.loop.total_steps
    if changes:
        agent.config = agent.config.replace(**changes)
    unsummarised = total == step and not (run_dir / "summary.json").is_file()
    if total <= step and not unsummarised:
        raise CheckpointError(finished_message(run_dir, step, total))
    agent.config = agent.config.replace(loop={"total_steps": total})
    try:
        agent.lock(run_dir)  # before the logs are cut back: one writer per run directory
        agent.own_run = run_dir.resolve()  # learn(run_dir=run_dir) continues this run
        arrays = read_arrays(directory / STATE_FILE)
        agent.collector = agent.make_collector()
        warning = restore(state, arrays, tensors, agent.collector, agent.buffer)
        try:
            agent.state.load_json(state, arrays)
            if agent.checkpoint_rule is not None and "policy_checkpoints" in state:
                agent.checkpoint_rule.load_json(state["policy_checkpoints"])
            logs = {str(name): int(size) for name, size in state["logs"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"the checkpoint's training state is malformed ({e!r})") from None
        truncate_logs(run_dir, logs)
    except BaseException:
        agent.close()  # its envs, and the run directory's lock
        raise
    if warning is not None:
        warnings.warn(warning, stacklevel=3)
    return agent


# Flat keys a user may change in a run's config.yaml between sessions (docs/resume.md): how long the
# run goes on, and what is shown or kept without changing what it computes.
SAFE_ON_RESUME = ("total_steps", "progress", "tensorboard", "keep_checkpoints", "checkpoint_replay")


def config_changes(run_dir: Path, checkpointed: Config, env_given: bool = False) -> dict[str, Any]:
    """The keys a user changed in `run_dir`/config.yaml since the checkpoint with config
    `checkpointed`, by flat key, when all are safe to change on resume (`SAFE_ON_RESUME`); any other
    change, or a config.yaml that cannot be read, is a CheckpointError listing them. Both may be in the
    nested form or the flat one of earlier versions: the resolved configs are compared. Without a
    config.yaml there is nothing to compare (the run writes it again)."""
    path = run_dir / "config.yaml"
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        edited = load_config(path)
    except ConfigError as e:
        reason = str(e) if str(path) in str(e) else f"{path}: {e}"
        raise CheckpointError(
            f"{reason}; fix or delete it (the run then continues with its checkpoint's config)"
        ) from None
    theirs, mine = flatten(edited.to_dict()), flatten(checkpointed.to_dict())
    changed = _differences(mine, theirs)
    unsafe = [k for k in changed if k not in SAFE_ON_RESUME and not (env_given and k == "env_id")]
    if unsafe:
        shown = ", ".join(unsafe[:6]) + (f" and {len(unsafe) - 6} more" if len(unsafe) > 6 else "")
        raise CheckpointError(
            f"{path} was edited since the checkpoint ({shown}); resume continues a run as it was "
            f"configured: undo the edit, or train a new run with it (ddpg train --preset {path} "
            "--run-dir NEW); only " + ", ".join(SAFE_ON_RESUME) + " may change on resume"
        )
    return {k: theirs[k] for k in changed if k in SAFE_ON_RESUME}


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between `a` and `b`, going into mappings in both."""
    missing = object()
    out = []
    for key in sorted({*a, *b}, key=str):
        x, y = a.get(key, missing), b.get(key, missing)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}")
    return out


# ---------------------------------------------------------------------------------------------------
# The collector, the buffer, the generators and the logs.


def log_sizes(root: Path) -> dict[str, int]:
    """Bytes in each CSV log now; every row is flushed as written, so this is what the run has logged."""
    return {name: (root / name).stat().st_size for name in LOG_FILES if (root / name).exists()}


def truncate_logs(root: Path, sizes: dict[str, int]) -> None:
    """Cut each log back to its size at the checkpoint: rows written after it will be written again."""
    for name, size in sizes.items():
        path = root / name
        if not path.is_file() or path.stat().st_size < size:
            raise CheckpointError(
                f"{path} is shorter than when the checkpoint was written ({size} bytes); "
                "the run directory was changed and cannot be resumed exactly"
            )
    for name, size in sizes.items():
        with (root / name).open("r+b") as f:
            f.truncate(size)


def capture(
    collector: Collector,
    buffer: Replay,
    device: torch.device,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, torch.Tensor]]:
    """Everything the collector, its envs, the buffer and the generators hold: (JSON, arrays for
    state.npz, tensors)."""
    arrays = {f"buffer.{name}": value for name, value in buffer.arrays().items()}
    for i, window in enumerate(buffer.windows):
        arrays.update({f"nstep.{i}.{name}": value for name, value in window.arrays().items()})
    arrays["noise"] = np.asarray(collector.noise.state)
    arrays["obs"] = np.asarray(collector.obs)
    snapshots = [dict(s) for s in collector.envs.call("snapshot")]
    for i, snapshot in enumerate(snapshots):
        arrays[f"env.{i}.actions"] = snapshot.pop("actions")
    meta = {
        "buffer": {"kind": type(buffer).__name__, "capacity": buffer.capacity},
        "episode": collector.episode,
        "episode_return": collector.episode_return.tolist(),
        "episode_length": collector.episode_length.tolist(),
        "envs": snapshots,
        "rng": to_json({**global_rng_state(), "agent": collector.rng.bit_generator.state}),
    }
    tensors = {f"{RNG}torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors.update({f"{RNG}cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return meta, arrays, tensors


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of state.npz, checked against the manifest beside it; refuses pickled objects and
    names the file when it is damaged."""
    verify(path.parent, (path.name,))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def restore(
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    tensors: dict[str, torch.Tensor],
    collector: Collector,
    buffer: Replay,
) -> str | None:
    """Put the collector, its envs, the buffer and every generator back as `capture` saw them.

    Returns a warning when replaying an episode did not reach the saved observation (the environment
    is not deterministic given its seed and actions); training then continues from where the replay got.
    """
    try:
        _restore_buffer(buffer, meta["buffer"], arrays)
        for i, window in enumerate(buffer.windows):
            window.load_arrays(section(arrays, f"nstep.{i}"))
        noise = collector.noise
        noise.state = arrays["noise"].astype(np.float64).reshape(noise.state.shape).copy()
        if len(meta["envs"]) != collector.n:
            raise ValueError(f"the checkpoint has {len(meta['envs'])} envs, the run {collector.n}")
        snapshots = [{**s, "actions": arrays[f"env.{i}.actions"]} for i, s in enumerate(meta["envs"])]
        collector.envs.set_attr("pending", snapshots)
        obs = np.stack(collector.envs.call("restore_pending"))
        differ = [i for i in range(collector.n) if not np.array_equal(obs[i], arrays["obs"][i])]
        warning = None
        if differ:
            warning = (
                f"replaying the current episode of env {differ[0]} did not reproduce the saved "
                "observation; the environment is not deterministic given its seed and actions, so the "
                "resumed run will differ from an uninterrupted one"
            )
        collector.obs = obs
        collector.episode = int(meta["episode"])
        collector.episode_return = np.array(meta["episode_return"], dtype=np.float64)
        collector.episode_length = np.array(meta["episode_length"], dtype=np.int64)
        rng = from_json(meta["rng"])
        set_global_rng_state(rng)  # last: the envs' replays (in this process) moved them
        restore_generator(collector.rng, rng["agent"])
        torch.set_rng_state(tensors[f"{RNG}torch"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"the checkpoint's training state is incomplete or malformed ({e!r})") from None
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith(f"{RNG}cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return warning


def _restore_buffer(buffer: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    if meta["kind"] != type(buffer).__name__ or int(meta["capacity"]) != buffer.capacity:
        raise ValueError(f"a {meta['kind']} of capacity {meta['capacity']} does not fit this run's buffer")
    # The ring is restored as laid out in memory, not oldest-first: sampling draws indices, and the
    # same indices must give the same transitions after a resume.
    buffer.load_arrays(section(arrays, "buffer"))


def finished_message(run_dir: Path, step: int, total: int) -> str:
    return (
        f"run {run_dir} is finished (step {step} of total_steps {total}); "
        f"give a larger total (`ddpg resume {run_dir} --steps N`, N > {step}) to train further"
    )
