"""ddpg against Stable-Baselines3, side by side: training speed and wall-clock to solve Pendulum-v1.

    python bench/speed.py speed [--arch 64,64] [--steps N] [--rounds R] [--threads T]
                                [--compile true|false|auto] [--json]
    python bench/speed.py solve [--seeds 5] [--max-steps N] [--preset P] [--threads T] [--json]
    python bench/speed.py parts [--arch 64,64] [--calls N] [--rounds R] [--threads T]
                                [--compile true|false|auto] [--json]

Both libraries run in one process, interleaved (ddpg, SB3, ddpg, SB3, …) so that a machine shared with
other work slows both alike, with the same `torch.set_num_threads`. Timing is library-agnostic: a
wrapper around the environment notes the clock at given step counts, so "steps per second" means the
same thing for both (environment step + acting + storing + the update cadence around it). Needs the
bench extra (stable-baselines3); without it, one line says how to install it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ddpg.cli.shared import Parser, UsageError, positive, run_command
from ddpg.config import Config, load_preset, resolve
from ddpg.envs import make_env
from ddpg.run.evaluation import evaluate
from ddpg.run.resources import usable_cpus

SOLVED_RETURN = -200.0  # Pendulum-v1 is "solved" at a mean evaluation return of -200 or more


class BenchError(ValueError):
    """The benchmark cannot run (e.g. Stable-Baselines3 is not installed); the message says why."""


def require_sb3() -> Any:
    try:
        import stable_baselines3
    except ImportError:
        raise BenchError(
            "stable-baselines3 is not installed; install the bench extra: pip install -e '.[bench]' "
            "(or pip install stable-baselines3)"
        ) from None
    return stable_baselines3


class Stopwatch(gym.Wrapper):
    """Records `time.perf_counter()` when the environment has taken `start` and `stop` steps."""

    def __init__(self, env: gym.Env, start: int, stop: int) -> None:
        super().__init__(env)
        self.start, self.stop = start, stop
        self.steps = 0
        self.t_start: float | None = None
        self.t_stop: float | None = None

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.steps += 1
        if self.steps == self.start:
            self.t_start = time.perf_counter()
        elif self.steps == self.stop:
            self.t_stop = time.perf_counter()
        return out

    @property
    def rate(self) -> float:
        if self.t_start is None or self.t_stop is None:
            raise RuntimeError("the measured window was not reached")
        return (self.stop - self.start) / (self.t_stop - self.t_start)


# ---------------------------------------------------------------------------------------------------
# Speed: steps per second at one update per step.


@dataclass(frozen=True)
class SpeedSettings:
    env_id: str = "Pendulum-v1"
    hidden_sizes: tuple[int, ...] = (64, 64)
    steps: int = 2000  # measured steps (after warm-up and a short settling window)
    learning_starts: int = 1000
    settle: int = 200  # updates run before the clock starts (the compile happens here)
    batch_size: int = 256
    rounds: int = 3
    threads: int = 1
    compile: bool | str = True


def _ddpg_config(s: SpeedSettings, seed: int) -> Config:
    return resolve(
        env_id=s.env_id,
        preset="Pendulum-v1" if s.env_id == "Pendulum-v1" else None,
        overrides=[],
        seed=seed,
        hidden_sizes=list(s.hidden_sizes),
        critic_hidden_sizes=None,
        action_layer=0,  # as SB3's critic: the action enters with the observation
        batch_size=s.batch_size,
        learning_starts=s.learning_starts,
        train_freq=1,
        gradient_steps=1,
        tau=0.005,
        eval_episodes=0,
        progress=False,
        video=False,
        compile=s.compile,
    )


def _ddpg_speed(s: SpeedSettings, seed: int) -> tuple[float, float | None]:
    from ddpg.run.agent import DDPG

    start = s.learning_starts + s.settle
    env = Stopwatch(make_env(s.env_id), start, start + s.steps)
    agent = DDPG(env, _ddpg_config(s, seed))
    agent.learn(start + s.steps)
    return env.rate, getattr(agent.update_choice.update, "compile_seconds", None)


def _sb3_ddpg(env: gym.Env, seed: int, settings: dict[str, Any]) -> Any:
    """SB3's DDPG on the CPU: `settings` are its arguments, with `noise_std` and `net_arch`."""
    sb3 = require_sb3()
    from stable_baselines3.common.noise import NormalActionNoise

    kwargs = dict(settings)
    dim = int(np.prod(env.action_space.shape))
    noise = NormalActionNoise(np.zeros(dim), kwargs.pop("noise_std") * np.ones(dim))
    policy = {"net_arch": list(kwargs.pop("net_arch"))}
    return sb3.DDPG(
        "MlpPolicy",
        env,
        action_noise=noise,
        policy_kwargs=policy,
        seed=seed,
        device="cpu",
        verbose=0,
        **kwargs,
    )


def _sb3_speed(s: SpeedSettings, seed: int) -> float:
    start = s.learning_starts + s.settle
    env = Stopwatch(make_env(s.env_id), start, start + s.steps)
    fixed = {"learning_rate": 1e-3, "buffer_size": 200_000, "tau": 0.005, "gamma": 0.98, "noise_std": 0.1}
    ours = {"learning_starts": s.learning_starts, "batch_size": s.batch_size, "net_arch": s.hidden_sizes}
    model = _sb3_ddpg(env, seed, {**fixed, **ours, "train_freq": 1, "gradient_steps": 1})
    model.learn(start + s.steps)
    return env.rate


@dataclass
class SpeedResult:
    settings: dict[str, Any]
    ddpg: list[float] = field(default_factory=list)  # steps/s, one per round
    sb3: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # per round: ddpg / SB3
    compile_seconds: list[float | None] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "ddpg_median": statistics.median(self.ddpg),
            "sb3_median": statistics.median(self.sb3),
            "ratio_median": statistics.median(self.ratios),
            "ratio_min": min(self.ratios),
            "ratio_max": max(self.ratios),
        }


def machine_info(threads: int) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(),
        "cores": usable_cpus(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_speed(s: SpeedSettings, report: Callable[[str], None] = lambda _: None) -> SpeedResult:
    """Interleaved rounds of ddpg then SB3 at the same settings; ratios per round."""
    require_sb3()
    torch.set_num_threads(s.threads)
    result = SpeedResult(settings=asdict(s), machine=machine_info(s.threads))
    for r in range(s.rounds):
        ours, compile_s = _ddpg_speed(s, seed=r)
        torch.set_num_threads(s.threads)
        theirs = _sb3_speed(s, seed=r)
        torch.set_num_threads(s.threads)
        result.ddpg.append(ours)
        result.sb3.append(theirs)
        result.ratios.append(ours / theirs)
        result.compile_seconds.append(compile_s)
        report(
            f"round {r + 1}/{s.rounds}: ddpg {ours:.0f} steps/s, SB3 {theirs:.0f} steps/s, "
            f"×{ours / theirs:.2f}"
        )
    return result


# ---------------------------------------------------------------------------------------------------
# Parts: where one training step's time goes.


def run_parts(s: SpeedSettings, calls: int, report: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """CPU µs per call of each part of a ddpg training step at the speed settings, timed on a live agent
    after warm-up and settling: `s.rounds` rounds in which every part makes `calls` calls in turn, medians
    and ranges over the rounds. CPU time of this process, not wall time: on a shared machine a part's wall
    time mostly measures how long it waited for a core (at load 7 on 2 cores, 2-4x its CPU time). The
    parts run out of order (an env steps without the collector, one transition is stored again and
    again): they measure costs, the run they leave behind is meaningless. Runs against an older checkout
    too (PYTHONPATH=OLD/src)."""
    from ddpg.agent.learner import TensorBatch
    from ddpg.run.agent import DDPG
    from ddpg.run.loop import Loop, sample

    torch.set_num_threads(s.threads)
    agent = DDPG(make_env(s.env_id), _ddpg_config(s, seed=0))
    agent.learn(s.learning_starts + s.settle)
    assert agent.collector is not None and agent.update_choice is not None
    loop, collector, buffer, update = (
        Loop(agent, 2**62, None),
        agent.collector,
        agent.buffer,
        agent.update_choice.update,
    )
    step = agent.step
    actions = collector.explore(agent.policy, step)
    env_actions = collector.scale.to_env(actions)
    transition = collector.step(actions).transitions[0][1]
    # The loop's own sampling where it has one (in place since InPlaceSampler), else sample + tensors.
    draw = getattr(loop, "_sample", None) or (
        lambda: (None, TensorBatch.from_numpy(sample(agent), agent.learner.device))
    )
    tensors = draw()[1]
    parts: dict[str, Callable[[], Any]] = {
        "env step (vector env and wrappers)": lambda: collector.envs.step(env_actions),
        "acting, μ(s)": lambda: agent.policy(collector.obs),
        "noise": lambda: collector.noise.sample(step, collector.episode),
        "explore (acting, noise, clip)": lambda: collector.explore(agent.policy, step),
        "collector step (env step, transitions)": lambda: collector.step(actions, step),
        "store": lambda: buffer.store(transition),
        "index draw": lambda: agent.rng.integers(0, len(buffer), size=s.batch_size),
        "sample and tensors": draw,
        "update": lambda: update(tensors),
        "loop: collect (explore, step, store)": loop._collect_step,
        "loop: train round (sample, update, log)": loop._train_round,
    }
    times: dict[str, list[float]] = {name: [] for name in [*parts, "whole step"]}
    for r in range(s.rounds):
        for name, part in parts.items():
            t0 = time.process_time()
            for _ in range(calls):
                part()
            times[name].append((time.process_time() - t0) / calls * 1e6)
        t0, start = time.process_time(), agent.step
        agent.learn(start + calls)
        times["whole step"].append((time.process_time() - t0) / calls * 1e6)
        report(f"round {r + 1}/{s.rounds}: whole step {times['whole step'][-1]:.0f} µs")
    median = {name: statistics.median(t) for name, t in times.items()}
    median["rest of the loop (bookkeeping, logging, progress)"] = (
        median["whole step"] - median["loop: collect (explore, step, store)"]
        - median["loop: train round (sample, update, log)"]
    )  # fmt: skip
    return {
        "settings": asdict(s),
        "calls": calls,
        "machine": machine_info(s.threads),
        "update_path": agent.update_choice.path,
        "us_median": median,
        "us_range": {name: (min(t), max(t)) for name, t in times.items()},
    }


# ---------------------------------------------------------------------------------------------------
# Time to solve Pendulum-v1, each library with its own best published settings.

# RL-Zoo (rl-baselines3-zoo, hyperparams/ddpg.yml) for Pendulum-v1.
SB3_ZOO_PENDULUM = {
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "noise_std": 0.1,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "net_arch": [400, 300],
}


@dataclass(frozen=True)
class SolveSettings:
    seeds: int = 5
    max_steps: int = 20_000
    eval_every: int = 1000
    eval_episodes: int = 5
    threads: int = 1
    preset: str = "Pendulum-v1"


@dataclass(frozen=True)
class SolveRun:
    library: str
    seed: int
    solved_at_step: int | None
    seconds: float | None  # training wall-clock (evaluation excluded) to the first solving evaluation
    last_return: float


def _time_to_solve(
    train_to: Callable[[int], None], act: Callable[[np.ndarray], np.ndarray], s: SolveSettings, seed: int
) -> tuple[int | None, float | None, float]:
    eval_env = make_env("Pendulum-v1")
    elapsed, ret = 0.0, float("-inf")
    for step in range(s.eval_every, s.max_steps + 1, s.eval_every):
        t0 = time.perf_counter()
        train_to(step)
        elapsed += time.perf_counter() - t0
        ret = evaluate(act, eval_env, s.eval_episodes, seed=10_000 + seed).mean_return
        if ret >= SOLVED_RETURN:
            return step, elapsed, ret
    return None, None, ret


def _ddpg_solve(s: SolveSettings, seed: int, config: Config) -> SolveRun:
    from ddpg.run.agent import DDPG

    agent = DDPG(config=config)
    solved, seconds, ret = _time_to_solve(agent.learn, agent.act, s, seed)
    return SolveRun("ddpg", seed, solved, seconds, ret)


def _sb3_solve(s: SolveSettings, seed: int) -> SolveRun:
    model = _sb3_ddpg(make_env("Pendulum-v1"), seed, SB3_ZOO_PENDULUM)

    def train_to(step: int) -> None:
        model.learn(step - model.num_timesteps, reset_num_timesteps=False)

    solved, seconds, ret = _time_to_solve(
        train_to, lambda obs: model.predict(obs, deterministic=True)[0], s, seed
    )
    return SolveRun("sb3", seed, solved, seconds, ret)


@dataclass
class SolveResult:
    settings: dict[str, Any]
    config: dict[str, Any]
    sb3_settings: dict[str, Any]
    runs: list[SolveRun] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for lib in ("ddpg", "sb3"):
            runs = [r for r in self.runs if r.library == lib]
            # An unsolved run counts as infinitely slow, so the median stays honest.
            seconds = [r.seconds if r.seconds is not None else float("inf") for r in runs]
            steps = [r.solved_at_step if r.solved_at_step is not None else float("inf") for r in runs]
            out[lib] = {
                "median_seconds": statistics.median(seconds) if runs else None,
                "median_steps": statistics.median(steps) if runs else None,
                "solved": sum(r.seconds is not None for r in runs),
                "runs": len(runs),
            }
        a, b = out["ddpg"]["median_seconds"], out["sb3"]["median_seconds"]
        out["speedup_median"] = b / a if a and b and a != float("inf") else None
        return out


def run_solve(s: SolveSettings, report: Callable[[str], None] = lambda _: None) -> SolveResult:
    require_sb3()
    torch.set_num_threads(s.threads)
    config = resolve(
        preset=s.preset,
        overrides=[],
        eval_episodes=0,
        progress=False,
        video=False,
        total_steps=s.max_steps,
    )
    result = SolveResult(asdict(s), config.to_dict(), SB3_ZOO_PENDULUM, machine=machine_info(s.threads))
    for seed in range(s.seeds):
        for library in ("ddpg", "sb3"):
            torch.set_num_threads(s.threads)
            r = _ddpg_solve(s, seed, config.replace(seed=seed)) if library == "ddpg" else _sb3_solve(s, seed)
            result.runs.append(r)
            when = (
                f"step {r.solved_at_step} after {r.seconds:.1f} s" if r.seconds is not None else "not solved"
            )
            report(f"seed {seed}: {r.library} {when} (last eval {r.last_return:.0f})")
    return result


# ---------------------------------------------------------------------------------------------------
# Command line.


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,64, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 64,64, got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python bench/speed.py", description="ddpg against Stable-Baselines3.")
    sub = parser.add_subparsers(dest="bench", required=True, parser_class=Parser, metavar="BENCHMARK")
    p = sub.add_parser(
        "speed",
        help="training steps/s of ddpg and Stable-Baselines3, interleaved",
        description="Pendulum-v1, batch 256, one update per step, same threads; rounds alternate "
        "ddpg and SB3 and the ratio is taken per round. Needs the bench extra (stable-baselines3).",
    )
    _network_options(p)
    p.add_argument("--steps", type=positive, default=2000, help="measured steps per run (default 2000)")
    p.add_argument("--rounds", type=positive, default=3, help="ddpg/SB3 pairs (default 3)")
    _shared_options(p)
    p.set_defaults(func=cmd_speed)
    p = sub.add_parser(
        "parts",
        help="CPU µs per part of a ddpg training step (acting, env step, sampling, update, ...)",
        description="Pendulum-v1, batch 256, one update per step, after warm-up: the CPU time of each part "
        "of a training step, timed on a live agent, the parts taking turns, medians over rounds. ddpg only.",
    )
    _network_options(p)
    p.add_argument("--calls", type=positive, default=300, help="calls per part per round (default 300)")
    p.add_argument("--rounds", type=positive, default=5, help="rounds (default 5)")
    _shared_options(p)
    p.set_defaults(func=cmd_parts)
    p = sub.add_parser(
        "solve",
        help="wall-clock to solve Pendulum-v1, ddpg preset vs SB3 RL-Zoo settings",
        description="Each seed trains ddpg (its Pendulum-v1 preset) then SB3 (RL-Zoo hyper-parameters), "
        "evaluating every 1000 steps; reports the training time to the first evaluation >= -200.",
    )
    p.add_argument("--seeds", type=positive, default=5, help="seeds per library (default 5)")
    p.add_argument("--max-steps", type=positive, default=20_000, help="give up after (default 20000)")
    p.add_argument("--preset", default="Pendulum-v1", help="ddpg preset or YAML (default Pendulum-v1)")
    _shared_options(p)
    p.set_defaults(func=cmd_solve)
    return parser


def _network_options(p: argparse.ArgumentParser) -> None:
    """The benchmarks that build their own ddpg agent: its hidden sizes and update path."""
    p.add_argument("--arch", type=_sizes, default=[64, 64], help="hidden sizes, e.g. 400,300 (default 64,64)")
    p.add_argument("--compile", choices=["true", "false", "auto"], default="true", help="ddpg's update path")


def _shared_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive, default=1, help="torch threads (default 1; the same for SB3)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _speed_settings(args: argparse.Namespace, **settings: Any) -> SpeedSettings:
    """SpeedSettings from `_network_options`, --threads and --rounds, and `settings`."""
    compile = {"true": True, "false": False}.get(args.compile, "auto")
    return SpeedSettings(
        hidden_sizes=tuple(args.arch), rounds=args.rounds, threads=args.threads, compile=compile, **settings
    )


def _reporter(json_mode: bool) -> Callable[[str], None]:
    # With --json, stdout carries only the JSON; progress goes to stderr.
    stream = sys.stderr if json_mode else sys.stdout
    return lambda message: print(message, file=stream, flush=True)


def _check_sb3() -> None:
    try:
        require_sb3()
    except BenchError as e:
        raise UsageError(str(e)) from None


def cmd_speed(args: argparse.Namespace) -> int:
    _check_sb3()
    result = run_speed(_speed_settings(args, steps=args.steps), report=_reporter(args.json))
    summary = result.summary()
    if args.json:
        print(json.dumps({**asdict(result), "summary": summary}))
    else:
        print(
            f"median: ddpg {summary['ddpg_median']:.0f} steps/s, SB3 {summary['sb3_median']:.0f} steps/s, "
            f"ratio ×{summary['ratio_median']:.2f} "
            f"(rounds ×{summary['ratio_min']:.2f}–×{summary['ratio_max']:.2f})"
        )
    return 0


def cmd_parts(args: argparse.Namespace) -> int:
    result = run_parts(_speed_settings(args), args.calls, report=_reporter(args.json))
    if args.json:
        print(json.dumps(result))
        return 0
    whole = result["us_median"]["whole step"]
    print(f"update path: {result['update_path']}; CPU µs per call, median over {args.rounds} rounds")
    print("| part | µs | range | share of a step |\n|---|---|---|---|")
    for name, us in result["us_median"].items():
        low, high = result["us_range"].get(name, (us, us))
        print(f"| {name} | {us:.1f} | {low:.1f}–{high:.1f} | {us / whole:.0%} |")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    load_preset(args.preset)  # a bad preset is a one-line error before anything runs
    _check_sb3()
    settings = SolveSettings(
        seeds=args.seeds, max_steps=args.max_steps, threads=args.threads, preset=args.preset
    )
    result = run_solve(settings, report=_reporter(args.json))
    summary = result.summary()
    if args.json:
        print(json.dumps({**asdict(result), "summary": summary}))
    else:
        for lib in ("ddpg", "sb3"):
            s = summary[lib]
            print(
                f"{lib}: median {s['median_seconds']:.1f} s, {s['median_steps']} steps "
                f"({s['solved']}/{s['runs']} solved)"
            )
        if summary["speedup_median"] is not None:
            print(f"ddpg solves ×{summary['speedup_median']:.2f} faster (median wall-clock)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
