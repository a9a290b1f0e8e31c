"""Exact resume: a run killed at any moment and resumed writes the logs an uninterrupted run writes."""

import contextlib
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import ddpg
from ddpg import DDPG, Config
from ddpg.cli import main
from ddpg.run import persistence as resume_state
from ddpg.run.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
# Small and quick, but with every moving part: episodes of 50 steps, a buffer that wraps (300 < 600),
# updates, evaluations and checkpoints every 100 steps.
ARGS = [
    "train",
    "--env",
    "Pendulum-v1",
    "--seed",
    "7",
    "--steps",
    "600",
    "--set",
    "hidden_sizes=[32,32]",
    "batch_size=16",
    "buffer_size=300",
    "learning_starts=100",
    "max_episode_steps=50",
    "eval_every=200",
    "eval_episodes=1",
    "log_every=20",
    "checkpoint_every=100",
    "keep_checkpoints=2",
    "noise.kind=ou",
    "noise.sigma=0.3",
    "progress=false",
    "video=false",
]
LOGS = ("metrics.csv", "updates.csv", "eval.csv")


def rows(path: Path) -> list[dict[str, str]]:
    # wall_time is wall-clock seconds: the one column a resumed run cannot reproduce.
    with path.open(newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]


def assert_same_logs(a: Path, b: Path) -> None:
    for log in LOGS:
        assert rows(a / log) == rows(b / log), log


def _subprocess_env() -> dict[str, str]:
    src = Path(ddpg.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)]), "OMP_NUM_THREADS": "1"}


def _metrics_rows(run: Path) -> int:
    try:
        return max(len((run / "metrics.csv").read_text().splitlines()) - 1, 0)
    except OSError:
        return 0


def test_run_killed_with_sigkill_resumes_to_the_logs_of_an_uninterrupted_run(reference, tmp_path, capsys):
    # Each trial is killed after a different (seeded random) number of episodes, at whatever moment of
    # the loop the kill lands: mid-update, mid-evaluation, mid-checkpoint.
    thresholds = random.Random(0).sample(range(3, 11), 2)
    runs = [tmp_path / f"trial{i}" for i in range(len(thresholds))]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ddpg.cli", *ARGS, "--run-dir", str(run)],
            env=_subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for run in runs
    ]
    try:
        pending = dict(zip(range(len(runs)), thresholds))
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for i, threshold in list(pending.items()):
                run = runs[i]
                if (run / "checkpoints" / "latest").exists() and _metrics_rows(run) >= threshold:
                    procs[i].send_signal(signal.SIGKILL)
                    del pending[i]
                assert procs[i].poll() in (None, -signal.SIGKILL), procs[i].stderr.read().decode()
            time.sleep(0.005)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
    for run, p in zip(runs, procs):
        assert p.returncode == -signal.SIGKILL
        assert main(["resume", str(run)]) == 0
        assert_same_logs(reference, run)
    capsys.readouterr()


class Killed(BaseException):
    """Stands for a kill at an exact point (an exception handler cannot catch it by accident)."""


@pytest.mark.parametrize("name", ["update", "evaluate"])
def test_run_interrupted_inside_an_update_or_an_evaluation_resumes_identically(
    reference, tmp_path, monkeypatch, capsys, name
):
    import ddpg.agent.fast.update
    import ddpg.run.agent

    # A short run's update is the fast path's (compile: auto), so that is where it dies.
    owner, attr = (
        (ddpg.agent.fast.update.FastUpdate, "__call__") if name == "update" else (ddpg.run.agent, name)
    )
    real = getattr(owner, attr)
    kill_at = random.Random(name).randrange(2, 400 if name == "update" else 3)
    calls = []

    def dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == kill_at:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attr, dies)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        main([*ARGS, "--run-dir", str(run)])
    monkeypatch.setattr(owner, attr, real)
    assert main(["resume", str(run)]) == 0
    assert_same_logs(reference, run)
    capsys.readouterr()


def test_kill_during_a_checkpoint_write_leaves_latest_loadable_and_resumable(
    reference, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    real_write = resume_state.write_arrays
    calls = []

    def dies_halfway(path, arrays):
        calls.append(path)
        if len(calls) == 4:  # the fourth checkpoint (after step 0, 100 and 200): step 300
            path.write_bytes(b"PK\x03\x04 half a file")
            raise SystemExit("killed while writing a checkpoint")
        real_write(path, arrays)

    monkeypatch.setattr(resume_state, "write_arrays", dies_halfway)
    with pytest.raises(SystemExit):
        main([*ARGS, "--run-dir", str(run)])
    monkeypatch.setattr(resume_state, "write_arrays", real_write)
    checkpoints = run / "checkpoints"
    # What a SIGKILL (rather than an exception) leaves behind: the half-written temporary directory.
    (checkpoints / ".tmp-step_000000300-0badf00d").mkdir()
    (checkpoints / ".tmp-step_000000300-0badf00d" / "model.safetensors").write_bytes(b"\0" * 10)
    assert os.readlink(checkpoints / "latest") == "step_000000200"
    assert DDPG.load(run).step == 200
    assert main(["resume", str(run)]) == 0
    assert_same_logs(reference, run)
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    capsys.readouterr()


def test_checkpoints_keep_the_last_k_and_the_best_evaluation(reference):
    checkpoints = reference / "checkpoints"
    steps = sorted(p.name for p in checkpoints.glob("step_*"))
    assert steps == ["step_000000500", "step_000000600"]
    assert os.readlink(checkpoints / "latest") == "step_000000600"
    evals = rows(reference / "eval.csv")
    best = max(evals, key=lambda r: float(r["mean_return"]))
    assert os.readlink(checkpoints / "best") == f"best_step_{int(best['step']):09d}"
    assert DDPG.load(checkpoints / "best").step == int(best["step"])
    assert DDPG.load(reference, checkpoint="best").step == int(best["step"])
    assert DDPG.load(reference, checkpoint="step_000000500").step == 500
    assert len(list(checkpoints.glob("best_step_*"))) == 1


def test_resume_steps_extends_a_finished_run_as_if_it_had_been_longer(reference, tmp_path, capsys):
    short = tmp_path / "short"
    argv = [a if a != "600" else "400" for a in ARGS]
    assert main([*argv, "--run-dir", str(short)]) == 0
    assert main(["resume", str(short), "--steps", "600"]) == 0
    # The uninterrupted 600-step run evaluated at 400 only because of eval_every; so did this one.
    assert_same_logs(reference, short)
    capsys.readouterr()


def test_resume_of_a_finished_run_is_refused_and_changes_nothing(reference, capsys):
    before = {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()}
    assert main(["resume", str(reference)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "is finished (step 600" in err[0]
    assert main(["resume", str(reference), "--steps", "300"]) == 2
    capsys.readouterr()
    assert {p: p.read_bytes() for p in reference.rglob("*") if p.is_file()} == before


@pytest.fixture(scope="module")
def killed_before_summary(reference, tmp_path_factory):
    """The reference run as a kill between its final checkpoint and its summary leaves it, then resumed."""
    run = tmp_path_factory.mktemp("unsummarised") / "run"
    shutil.copytree(reference, run, symlinks=True)
    (run / "summary.json").unlink()
    (run / "plots" / "training.png").unlink()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["resume", str(run)])
    return {"run": run, "before": before, "code": code, "out": out.getvalue()}


def test_resume_of_a_run_killed_before_its_summary_writes_summary_and_plot(reference, killed_before_summary):
    run = killed_before_summary["run"]
    assert killed_before_summary["code"] == 0
    assert "wrote summary.json and plots/training.png" in killed_before_summary["out"]
    timing = ("train_steps_per_second", "wall_time_s", "compile_seconds", "update_timings")
    expected = json.loads((reference / "summary.json").read_text())
    written = json.loads((run / "summary.json").read_text())
    assert {k: v for k, v in written.items() if k not in timing} == {
        k: v for k, v in expected.items() if k not in timing
    }
    assert (run / "plots" / "training.png").read_bytes()[:4] == b"\x89PNG"


def test_finishing_an_unsummarised_run_leaves_its_logs_and_checkpoints_as_they_were(killed_before_summary):
    before = killed_before_summary["before"]
    assert {p: p.read_bytes() for p in before} == before


def test_resume_of_a_run_finished_by_resume_is_refused_as_finished(killed_before_summary, capsys):
    assert main(["resume", str(killed_before_summary["run"])]) == 2
    assert "is finished (step 600" in capsys.readouterr().err


def test_weights_only_checkpoint_is_refused_for_resume(tmp_path):
    agent = DDPG(config=Config(hidden_sizes=[16, 16], progress=False))
    agent.save(tmp_path / "run" / "checkpoints" / "step_000000000")
    os.symlink("step_000000000", tmp_path / "run" / "checkpoints" / "latest")
    with pytest.raises(CheckpointError, match="weights only"):
        DDPG.resume(tmp_path / "run", total_steps=10)


class HiddenRandomEnv(gym.Env):
    """Draws from an RNG no checkpoint can see, so replaying its episode cannot reproduce it."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._hidden = np.random.default_rng()  # seeded from OS entropy

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._hidden.normal(size=1).astype(np.float32), {}

    def step(self, action):
        return self._hidden.normal(size=1).astype(np.float32), 0.0, False, False, {}


def test_resume_warns_when_the_environment_does_not_replay_deterministically(tmp_path):
    config = Config(
        env_id="tests.run.test_resume:HiddenRandomEnv",
        hidden_sizes=[8, 8],
        batch_size=4,
        learning_starts=10,
        max_episode_steps=30,
        eval_episodes=0,
        checkpoint_every=20,
        progress=False,
        video=False,
    )
    DDPG(config=config).learn(20, run_dir=tmp_path / "run")
    with pytest.warns(UserWarning, match="did not reproduce the saved observation"):
        agent = DDPG.resume(tmp_path / "run", total_steps=40, env=config.env_id)
    assert agent.step == 20


class GlobalRandomEnv(gym.Env):
    """Draws its start and its dynamics noise from numpy's global generator, as much older code does."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = np.random.normal(size=1).astype(np.float32)
        return self.x, {}

    def step(self, action):
        self.x = (self.x + action + 0.1 * np.random.normal(size=1)).astype(np.float32)
        return self.x, float(-abs(self.x[0])), False, False, {}


def resumed_at(config: Config, stop: int, tmp_path: Path) -> DDPG:
    """Run `config` straight through into a/, and only to `stop` into b/; return b's resumed agent."""
    with DDPG(config=config) as straight:
        straight.learn(run_dir=tmp_path / "a")
    with DDPG(config=config) as stopped:
        stopped.learn(stop, run_dir=tmp_path / "b")
    return DDPG.resume(tmp_path / "b", env=config.env_id)  # a module:Class env is named again


def assert_continues_like_a(agent: DDPG, tmp_path: Path) -> None:
    agent.learn(run_dir=tmp_path / "b")
    for log in ("metrics.csv", "updates.csv"):
        assert rows(tmp_path / "a" / log) == rows(tmp_path / "b" / log), log


# Small runs whose checkpoint falls mid-episode after the buffer wrapped; eval off for speed.
TINY = dict(hidden_sizes=[8, 8], eval_episodes=0, log_every=5, progress=False, video=False)
TINY_PIXELS = dict(
    TINY,
    env_id="tests.helpers:PixelEnv",
    conv_channels=[4],
    conv_strides=[2],
    batch_size=4,
    buffer_size=40,
    learning_starts=10,
    max_episode_steps=13,
    total_steps=100,
)
TINY_STATE = dict(
    TINY,
    env_id="Pendulum-v1",
    batch_size=8,
    buffer_size=60,
    learning_starts=20,
    max_episode_steps=40,
    total_steps=120,
)


def test_environment_drawing_from_the_global_generator_replays_exactly(tmp_path):
    import warnings

    config = Config(
        **TINY,
        env_id="tests.run.test_resume:GlobalRandomEnv",
        batch_size=4,
        learning_starts=10,
        max_episode_steps=30,
        total_steps=90,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replay has 15 steps to reproduce, without a warning
        agent = resumed_at(config, 45, tmp_path)
    assert_continues_like_a(agent, tmp_path)


def test_pixel_run_resumes_with_its_frame_buffer_exactly(tmp_path):
    agent = resumed_at(Config(**TINY_PIXELS), 57, tmp_path)
    assert type(agent.buffer).__name__ == "FrameReplayBuffer"
    assert_continues_like_a(agent, tmp_path)


def test_prioritized_run_resumes_with_its_priorities_exactly(tmp_path):
    # β anneals to 1 at total_steps: both runs plan the same length.
    agent = resumed_at(Config(**TINY_STATE, prioritized=True), 70, tmp_path)
    assert_continues_like_a(agent, tmp_path)


def test_td7_run_resumes_with_its_encoders_value_range_and_lap_priorities_exactly(tmp_path):
    # Target updates every 10 updates on both sides of the checkpoint: the fixed encoders, the value
    # range and LAP's largest priority must all come back as they were (with TD7's policy checkpoints,
    # on by default, updating in bursts at episode ends).
    td7 = dict(algo="td7", zs_dim=8, encoder_hidden_sizes=[8], target_update_every=10)
    agent = resumed_at(Config(**TINY_STATE, **td7), 70, tmp_path)
    assert agent.learner.critic_updates >= 10 and not torch.equal(*agent.learner.value_range.bounds)
    assert_continues_like_a(agent, tmp_path)


def test_run_with_observation_normalisation_resumes_with_its_statistics_exactly(tmp_path):
    agent = resumed_at(Config(**TINY_STATE, obs_norm=True), 70, tmp_path)
    assert agent.obs_norm.count == 70
    assert_continues_like_a(agent, tmp_path)


def test_n_step_run_resumes_with_its_pending_window_exactly(tmp_path):
    agent = resumed_at(Config(**TINY_STATE, n_step=5), 70, tmp_path)
    assert len(agent.buffer.windows[0].window) == 4  # n − 1 steps not yet in the buffer
    assert_continues_like_a(agent, tmp_path)


def test_pixel_run_with_prioritized_n_step_replay_resumes_exactly(tmp_path):
    agent = resumed_at(Config(**TINY_PIXELS, prioritized=True, n_step=3), 57, tmp_path)
    assert len(agent.buffer.windows[0].window) == 2
    assert_continues_like_a(agent, tmp_path)


def test_pixel_run_with_several_envs_resumes_each_envs_frames_exactly(tmp_path):
    config = Config(**TINY_PIXELS, n_envs=2, vectorization="sync", prioritized=True, n_step=3)
    agent = resumed_at(config, 56, tmp_path)
    assert agent.buffer.buffer.streams == 2
    assert_continues_like_a(agent, tmp_path)
    agent.close()


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_run_with_several_envs_resumes_each_envs_episode_exactly(tmp_path, vectorization):
    # Three envs, checkpointed mid-episode (step 72 = 24 steps each, episodes of 37), each with its own
    # recorded episode, n-step window and OU state; the continuation crosses episode ends.
    config = Config(
        **TINY_STATE, n_envs=3, vectorization=vectorization, n_step=3, noise={"kind": "ou", "sigma": 0.3}
    )
    config = config.replace(total_steps=150, max_episode_steps=37)
    agent = resumed_at(config, 72, tmp_path)
    assert agent.collector.episode_length.tolist() == [24, 24, 24]
    assert all(len(window.window) == 2 for window in agent.buffer.windows)
    assert_continues_like_a(agent, tmp_path)
    agent.close()
