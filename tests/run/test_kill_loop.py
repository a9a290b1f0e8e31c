"""Twenty SIGKILLs at random moments of one TD3 + prioritized + 3-step run, each followed by a resume:
the logs end identical to an uninterrupted run's, and every checkpoint left behind is whole."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ddpg import DDPG
from ddpg.cli import main
from tests.run.test_resume import _subprocess_env, assert_same_logs

KILLS = 20
ARGS = [
    "--env",
    "Pendulum-v1",
    "--algo",
    "td3",
    "--seed",
    "11",
    "--steps",
    "4000",
    "--set",
    "hidden_sizes=[16,16]",
    "batch_size=16",
    "buffer_size=500",
    "learning_starts=100",
    "max_episode_steps=60",
    "eval_every=150",
    "eval_episodes=1",
    "log_every=10",
    "checkpoint_every=40",
    "keep_checkpoints=3",
    "prioritized=true",
    "n_step=3",
    "progress=false",
    "video=false",
    "tensorboard=false",
]


def written_since(path: Path, moment: float) -> bool:
    return path.exists() and path.stat().st_mtime > moment


def test_twenty_kills_at_random_moments_then_resume_give_the_uninterrupted_logs(tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main(["train", *ARGS, "--run-dir", str(reference)]) == 0
    run, rng = tmp_path / "run", random.Random(3)
    command = ["train", *ARGS, "--run-dir", str(run)]
    for _ in range(KILLS):
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ddpg.cli", *command],
            env=_subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Once this process trains (it has logged), a random moment: mid-step, mid-update,
        # mid-evaluation or mid-checkpoint write, whatever the run is doing then.
        deadline = time.monotonic() + 60
        while not written_since(run / "updates.csv", started) and time.monotonic() < deadline:
            assert proc.poll() is None
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        assert proc.poll() is None  # still training: the run is long enough for every kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        command = ["resume", str(run)]
    assert main(["resume", str(run)]) == 0
    capsys.readouterr()
    assert_same_logs(reference, run)
    checkpoints = run / "checkpoints"
    for checkpoint in checkpoints.iterdir():
        if not checkpoint.name.startswith("."):
            DDPG.load(run, checkpoint=checkpoint.name).close()  # checks every file against the manifest
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]  # no half-written leftovers
