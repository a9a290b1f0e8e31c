"""Where a sweep's trials run: an embedded or remote Ray (Tune), or a local process pool.

Each trial is `run_trial`: one ordinary run directory. The backends only schedule trials and report
each one's end; sweep.py plans them and writes the reports. tune.py runs its own Tuner (a searcher and a
scheduler) in the same `ray_session` and records a failed seed with `record_failure`.
"""

from __future__ import annotations

import re
import shutil
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ddpg.config import from_dict
from ddpg.files import atomic_write
from ddpg.run.ray_session import environ as environ  # tune.py's driver settings
from ddpg.run.ray_session import ray_available as ray_available
from ddpg.run.ray_session import ray_session as ray_session
from ddpg.run.resources import usable_cpus

Finished = Callable[[str, str], None]  # (trial name, error or "")


def run_trial(config: dict[str, Any], run_dir: str, threads: int = 1) -> dict[str, Any]:
    """Train one trial into `run_dir`; a failure is written to `run_dir/error.txt` and returned, never
    raised, so one diverging or misconfigured trial does not stop the sweep."""
    from ddpg.run.agent import DDPG

    path = Path(run_dir)
    if path.exists():
        shutil.rmtree(path)  # the remains of an interrupted attempt: logs are append-only
    try:
        cfg = from_dict(config)
        if cfg.loop.threads == "auto":  # the trial's share of the CPUs; DDPG() sets torch's threads
            cfg = cfg.replace(threads=max(1, threads))
        with DDPG(cfg.environment.id, cfg) as agent:
            summary = agent.learn(run_dir=path)
        return {"status": "ok", "final_eval": summary["final_eval_mean_return"]}
    except Exception as e:
        return {"status": "error", "error": record_failure(path, e)}


def record_failure(run_dir: Path, error: Exception) -> str:
    """Write `error` with its traceback to `run_dir/error.txt` (what the reports read); its one line."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [line for line in str(error).splitlines() if line.strip()]
    message = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    atomic_write(run_dir / "error.txt", message + "\n\n" + "".join(traceback.format_exception(error)))
    return message


def _tune_trainable(params: dict[str, Any]) -> None:
    from ray import tune

    job = params["trial"]
    tune.report(run_trial(job["config"], job["run_dir"], job["threads"]))


def run_with_ray(
    jobs: list[dict[str, Any]],
    directory: Path,
    address: str | None,
    cpus: float,
    finished: Finished,
) -> str:
    with ray_session(address) as description:
        from ray import tune

        class Reporter(tune.Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                finished(trial.config["trial"]["name"], "")

            def on_trial_error(self, iteration, trials, trial, **info):
                finished(trial.config["trial"]["name"], worker_error(trial))

        threads = max(1, int(cpus))
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, {"cpu": cpus}),
            param_space={"trial": tune.grid_search([{**j, "threads": threads} for j in jobs])},
            tune_config=tune.TuneConfig(
                reuse_actors=True,  # one import of torch per worker, not per trial
                trial_name_creator=lambda t: t.config["trial"]["name"],
                trial_dirname_creator=lambda t: t.config["trial"]["name"],
            ),
            run_config=tune.RunConfig(
                name=f"tune_{datetime.now():%Y%m%d-%H%M%S}",
                storage_path=str(directory / "ray"),
                verbose=0,
                callbacks=[Reporter()],
            ),
        )
        tuner.fit()
        return description


def worker_error(trial: Any) -> str:
    """The last `SomeError: message` line of a Tune trial's error (the worker crashed or could not
    import ddpg; exceptions inside training are caught in `run_trial`)."""
    text = ""
    try:
        text = Path(trial.error_file).read_text() if trial.error_file else ""
    except (OSError, AttributeError):
        pass
    lines = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*[\w.]+(Error|Exception): ", ln)]
    return f"the Ray worker running it failed: {lines[-1]}" if lines else "the Ray worker running it failed"


def _pool_trial(job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return job["name"], run_trial(job["config"], job["run_dir"], job["threads"])


def run_with_pool(jobs: list[dict[str, Any]], cpus: float, finished: Finished) -> str:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, int(cpus))
    workers = max(1, int(usable_cpus() // max(cpus, 1e-9)))
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_pool_trial, {**j, "threads": threads}) for j in jobs]
        for future in as_completed(futures):
            name, _ = future.result()
            finished(name, "")
    return f"local process pool ({workers} workers; install ddpg[sweep] for Ray)"
