"""`ddpg tune` killed with SIGKILL and finished by the same command: the ground of the slow tests in
tests/experiments/test_tune.py, with the wall time of each part, as one JSON line.

A 4-trial × 2-seed × 1500-step tune on Pendulum (tiny networks) on the embedded Ray is started in its own
process group, killed (the whole group: the embedded Ray's processes too) once its first trial has ended,
then run again with the same command. Checks that every trial ended, that the trial which ended before
the kill was not run again, and that `ddpg train --preset OUT/best.yaml` trains; exit status 1 otherwise.

    python bench/tune_resume.py [--out DIR]
"""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = ["actor_lr=loguniform(1e-4,1e-2)", "hidden_sizes=choice([8,8],[16,16])"]
TINY = ["batch_size=32", "learning_starts=200", "eval_every=250", "eval_episodes=1", "log_every=100"]
TINY += ["video=false", "tensorboard=false"]


def tune_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "ddpg", "tune", "--env", "Pendulum-v1", "--space", *SPACE, "--trials", "4",
            "--seeds", "2", "--steps", "1500", "--out", str(out), "--set", *TINY]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, help="tune directory (default: a fresh temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ddpg-tune-bench-")) / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    first = subprocess.Popen(
        tune_command(out), env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    ended = None
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("[1/"):
            ended = line.split()[1]
            time.sleep(3)  # past Tune's next save of its experiment state
            break
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    for session in Path(tempfile.gettempdir()).glob(f"ddpg-ray-*/session_*_{first.pid}"):
        shutil.rmtree(session.parent, ignore_errors=True)  # what the killed embedded Ray left
    killed_after = time.perf_counter() - started
    if ended is None:
        print("error: the tune ended no trial before it stopped", file=sys.stderr)
        return 1
    before = (out / "runs" / ended / "seed_0" / "eval.csv").read_bytes()
    resumed = time.perf_counter()
    second = subprocess.run(tune_command(out), env=env, capture_output=True, text=True)
    resume_s = time.perf_counter() - resumed
    rows = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("| ")][1:]
    statuses = [row.strip("|").split("|")[-1].strip() for row in rows]
    train = subprocess.run(
        [sys.executable, "-m", "ddpg", "train", "--preset", str(out / "best.yaml"), "--steps", "40",
         "--run-dir", str(out.parent / "best_run"), "--set", "progress=false"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    checks = {
        "resumed_exit_0": second.returncode == 0,
        "four_trials_ended": len(statuses) == 4 and set(statuses) <= {"complete", "stopped"},
        "ended_trial_not_rerun": (out / "runs" / ended / "seed_0" / "eval.csv").read_bytes() == before,
        "best_yaml_trains": train.returncode == 0,
    }
    print(
        json.dumps(
            {
                "bench": "tune_resume",
                "killed_after_s": round(killed_after, 1),
                "resume_s": round(resume_s, 1),
                "total_s": round(time.perf_counter() - started, 1),
                "statuses": statuses,
                "checks": checks,
                "cpus": os.cpu_count(),
                "load": os.getloadavg()[0],
                "python": platform.python_version(),
            }
        )
    )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
