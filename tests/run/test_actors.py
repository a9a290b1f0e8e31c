"""Experience collection by Ray actors (run/actors.py): learning, a killed actor, every transition kept,
resuming, and the refusals. One embedded Ray serves the whole module."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ddpg.config import Config, ConfigError, resolve
from ddpg.run.actors import actor_sigma
from ddpg.run.agent import DDPG, TrainingEvent

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    from ddpg.run.ray_session import ray_session

    with ray_session(None):
        yield


def pendulum(**changes) -> Config:
    # The wall-clock preset; half a CPU per actor, so that two fit beside the learner on two cores.
    base = {"actors": 2, "actor_cpus": 0.5, "compile": False, "progress": False, "video": False}
    return resolve("Pendulum-v1", preset="Pendulum-v1-fast").replace(**{**base, **changes})


def actors_rows(run: Path) -> list[dict[str, str]]:
    with (run / "actors.csv").open() as f:
        return list(csv.DictReader(f))


# Before any test starts the module's Ray: these must find none running.


def test_without_ray_actors_are_refused_in_one_line(monkeypatch):
    import ddpg.run.ray_session

    monkeypatch.setattr(ddpg.run.ray_session, "ray_available", lambda: False)
    with DDPG("Pendulum-v1", pendulum()) as agent:
        with pytest.raises(ConfigError, match=r"^actors \(2\) need Ray: pip install"):
            agent.learn()


def test_an_address_where_no_cluster_answers_is_one_line(tmp_path, capsys):
    from ddpg.cli import main

    args = ["train", "--steps", "100", "--run-dir", str(tmp_path / "run"), "--address", "127.0.0.1:9"]
    assert main([*args, "--set", "actors=1", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: --address 127.0.0.1:9: no Ray cluster answers there") and err.count("\n") == 1
    )
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_two_actors_learn_pendulum_and_every_transition_reaches_the_buffer(ray_cluster, tmp_path):
    config = pendulum(total_steps=6000, seed=1)
    sent: list[int] = []

    def count(event: TrainingEvent) -> None:
        if event.kind == "evaluation" and event.step == config.loop.total_steps:
            assert event.agent.actors is not None
            sent.append(event.agent.actors.transitions_sent())

    with DDPG("Pendulum-v1", config) as agent:
        summary = agent.learn(run_dir=tmp_path / "run", callback=count)
        # One stream per env of each actor; n_step 1 and a buffer larger than the run: one slot each.
        assert len(agent.buffer) == config.loop.total_steps == sent[0]
    assert summary["total_steps"] == 6000
    # Random: about -1200; solved: about -180 from step 4000-5000 (seeds 1 and 2), as without actors. The
    # actors' timing varies between runs, so the best evaluation is asserted, with margin.
    assert summary["best_eval_mean_return"] > -400
    total = [r for r in actors_rows(tmp_path / "run") if r["actor"] == "-1"]
    assert total and abs(float(total[-1]["replay_ratio"]) - 1.0) < 0.01  # gradient_steps / train_freq


def test_a_killed_actor_is_replaced_and_the_run_finishes(ray_cluster, tmp_path):
    config = pendulum(total_steps=2000, learning_starts=500, eval_every=1000, eval_episodes=1, n_envs=2)
    killed: list[int] = []

    def kill(event: TrainingEvent) -> None:
        if event.kind != "episode":
            return
        assert event.agent.actors is not None
        worker = event.agent.actors.workers[0]
        if event.step >= 600 and not killed:
            ray.kill(worker, no_restart=False)
            killed.append(event.step)
        elif killed and len(killed) == 1 and event.step >= 1000:
            # Wait here until Ray has the worker back: under load a restart can take longer than the
            # other actor needs to collect the rest of the run on its own.
            ray.get(worker.transitions_sent.remote(), timeout=300)
            killed.append(event.step)

    with DDPG("Pendulum-v1", config) as agent:
        summary = agent.learn(run_dir=tmp_path / "run", callback=kill)
        assert len(agent.buffer) == 2000  # the lost batch was asked for again
    assert killed and summary["total_steps"] == 2000 and not summary["stopped_early"]
    total = [r for r in actors_rows(tmp_path / "run") if r["actor"] == "-1"]
    assert int(total[-1]["restarts"]) >= 1


def test_a_run_with_actors_resumes(ray_cluster, tmp_path):
    config = pendulum(total_steps=2000, learning_starts=500, eval_every=1000, eval_episodes=1)
    run = tmp_path / "run"

    def stop(event: TrainingEvent) -> bool:
        return event.kind != "evaluation"  # stops after the first evaluation, with a checkpoint

    with DDPG("Pendulum-v1", config) as agent:
        agent.learn(run_dir=run, callback=stop)
        stopped = agent.step
    assert 1000 <= stopped < 2000
    with DDPG.resume(run) as agent:
        summary = agent.learn(run_dir=run)
        assert len(agent.buffer) == 2000
    assert summary["total_steps"] == 2000 and not summary["stopped_early"]
    with (run / "metrics.csv").open() as f:  # cut back to the checkpoint, then continued: no gap, no repeat
        episodes = [int(r["episode"]) for r in csv.DictReader(f)]
    assert episodes == list(range(summary["episodes"]))


def test_actors_beyond_the_cluster_cpus_are_refused_in_one_line(ray_cluster):
    with DDPG("Pendulum-v1", pendulum(actors=3, actor_cpus=1000)) as agent:
        with pytest.raises(ConfigError, match=r"^actors \(3\) × actor_cpus \(1000\) need 3000 CPUs"):
            agent.learn()


@pytest.mark.parametrize(
    "changes, field",
    [({"policy_checkpoints": True}, "policy_checkpoints"), ({"obs_norm": True}, "obs_norm")],
)
def test_unsupported_combinations_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=rf"^{field} is not supported with actors \(2\)"):
        Config(actors=2, **changes)


def test_the_apex_spread_of_sigma():
    assert actor_sigma(0.4, 7, 0, 4) == 0.4 and actor_sigma(0.4, 7, 3, 4) == pytest.approx(0.4**8)
    assert actor_sigma(0.2, 0, 3, 4) == 0.2 == actor_sigma(0.2, 7, 0, 1)


def test_an_address_without_actors_is_refused_before_anything_is_written(tmp_path, capsys):
    from ddpg.cli import main

    assert main(["train", "--steps", "100", "--run-dir", str(tmp_path / "run"), "--address", "auto"]) == 2
    assert capsys.readouterr().err.startswith("error: --address is for runs with actors")
    assert not (tmp_path / "run").exists()


def test_an_address_without_actors_is_an_error_in_the_library_too(tmp_path):
    with DDPG("Pendulum-v1", pendulum(actors=0)) as agent:
        with pytest.raises(ConfigError, match=r"^address 'auto' is for runs with actors"):
            agent.learn(run_dir=tmp_path / "run", address="auto")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "sweep", "tune"])
@pytest.mark.parametrize("address", ["not an address", "", "host:", ":6379", "local"])
def test_a_malformed_address_is_one_line_before_anything_runs(command, address, tmp_path, capsys):
    from ddpg.cli import main

    args = {
        "train": ["train", "--run-dir", str(tmp_path / "run"), "--set", "actors=1"],
        "sweep": ["sweep", "--grid", "tau=0.1", "--out", str(tmp_path / "run")],
        "tune": ["tune", "--space", "tau=uniform(0.1,0.2)", "--trials", "2", "--out", str(tmp_path / "run")],
    }[command]
    assert main([*args, "--address", address]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --address: expected auto or HOST:PORT") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_address_given_to_learn_is_a_config_error(tmp_path):
    with DDPG("Pendulum-v1", pendulum(actors=1)) as agent:
        with pytest.raises(ConfigError, match=r"^--address not an address: "):
            agent.learn(run_dir=tmp_path / "run", address="not an address")
