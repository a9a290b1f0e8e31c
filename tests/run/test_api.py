"""The Python API as good as the command line: threads, the env recorded, a run directory never
mixed, matplotlib left alone, str paths, callbacks and stop_at_return, device auto."""

import json

import matplotlib
import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.cli import main
from ddpg.config import ConfigError, load_config, resolve
from ddpg.run.agent import RunExists, TrainingEvent
from ddpg.run.resources import torch_device
from tests.helpers import CountingEnv, error_line

TINY = dict(
    hidden_sizes=[16, 16],
    batch_size=16,
    learning_starts=20,
    max_episode_steps=40,
    eval_every=80,
    eval_episodes=1,
    log_every=10,
    progress=False,
    video=False,
    tensorboard=False,
)


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# 1. Threads -------------------------------------------------------------------------------------------


def test_threads_auto_sets_one_torch_thread_and_a_number_forces_it(threads):
    torch.set_num_threads(2)
    with DDPG(config=Config(**TINY)):
        assert torch.get_num_threads() == 1
    with DDPG(config=Config(**TINY, threads=3)) as agent:
        assert torch.get_num_threads() == 3
        assert agent.config.loop.threads == 3


def test_threads_is_a_loop_field_with_a_flat_key():
    assert Config().loop.threads == "auto"
    assert resolve(overrides=["threads=2"]).loop.threads == 2
    assert resolve(overrides=["loop.threads=auto"]).threads == "auto"
    for bad in ("threads=0", "threads=many", "threads=1.5"):
        with pytest.raises(ConfigError, match="threads"):
            resolve(overrides=[bad])


# 2. The env given is the env recorded ----------------------------------------------------------------


def test_the_env_given_is_recorded_in_config_summary_and_checkpoints(tmp_path):
    run = tmp_path / "run"
    with DDPG("MountainCarContinuous-v0", Config(**TINY)) as agent:
        assert agent.config.environment.id == "MountainCarContinuous-v0"
        assert agent.config.networks.hidden_sizes == [16, 16]  # the Config given, not the preset
        summary = agent.learn(80, run_dir=run)
    assert summary["env_id"] == "MountainCarContinuous-v0"
    assert json.loads((run / "summary.json").read_text())["env_id"] == "MountainCarContinuous-v0"
    assert load_config(run / "config.yaml").environment.id == "MountainCarContinuous-v0"
    meta = json.loads((run / "checkpoints" / "latest" / "meta.json").read_text())
    assert meta["config"]["environment"]["id"] == "MountainCarContinuous-v0"
    with DDPG.load(run) as loaded:
        assert loaded.config.environment.id == "MountainCarContinuous-v0"


def test_an_env_without_config_takes_its_preset_as_the_cli_does():
    with DDPG("MountainCarContinuous-v0") as agent:
        assert agent.config == resolve("MountainCarContinuous-v0")
        assert agent.config.exploration.noise.kind == "ou"  # the preset's, not the default gaussian
    with DDPG("Pendulum-v1") as agent:
        assert agent.config == resolve("Pendulum-v1")
        assert agent.config.networks.hidden_sizes == [256, 256]
    with DDPG("InvertedPendulum-v5") as agent:  # no preset of its own: the default, as the CLI gives it
        assert agent.config == resolve("InvertedPendulum-v5")
        assert agent.config.algorithm.algo == "td3"
    with DDPG(CountingEnv()) as agent:  # an instance without a Gymnasium spec has no preset either
        assert agent.config == resolve(preset="default")


# 3. One run per run directory ------------------------------------------------------------------------


def test_learn_refuses_a_directory_holding_another_run(tmp_path):
    run = tmp_path / "run"
    with DDPG(config=Config(**TINY)) as first:
        first.learn(40, run_dir=run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    with DDPG(config=Config(**TINY, seed=1)) as other, pytest.raises(RunExists, match="already holds a run"):
        other.learn(80, run_dir=str(run))
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".lock"}
    assert after == before


def test_the_same_agent_or_its_resumed_self_continues_its_run(tmp_path):
    run = tmp_path / "run"
    with DDPG(config=Config(**TINY)) as agent:
        agent.learn(40, run_dir=run)
        agent.learn(80, run_dir=run)
        assert agent.step == 80
    with DDPG.resume(run, total_steps=120) as resumed:
        resumed.learn(run_dir=run)
        assert resumed.step == 120


# 4. Matplotlib's backend and agent.plot() ------------------------------------------------------------


def test_learn_and_plot_leave_matplotlib_backend_and_pyplot_alone(tmp_path):
    from matplotlib.figure import Figure

    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # stands for a notebook's inline backend: anything but Agg
    try:
        with DDPG(config=Config(**TINY)) as agent:
            agent.learn(80, run_dir=tmp_path / "run")
            assert (tmp_path / "run" / "plots" / "training.png").is_file()
            fig = agent.plot()
        assert isinstance(fig, Figure)
        assert fig.axes[0].get_ylabel() == "return"
        assert matplotlib.get_backend() == "svg"
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []  # nothing left open in pyplot
        fig.savefig(tmp_path / "again.png")
        assert (tmp_path / "again.png").stat().st_size > 0
    finally:
        matplotlib.use(previous)


def test_plot_without_a_run_directory_says_so():
    with DDPG(config=Config(**TINY)) as agent, pytest.raises(ValueError, match="run directory"):
        agent.plot()


# 5. Paths as str -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.mp4", "x.gif"])
def test_evaluate_video_path_may_be_a_str(tmp_path, name):
    with DDPG(config=Config(**TINY)) as agent:
        result = agent.evaluate(1, video_path=str(tmp_path / name))
    assert len(result.returns) == 1
    assert (tmp_path / name).stat().st_size > 0


# 6. `ddpg evaluate --checkpoint best` on a killed run ------------------------------------------------


def test_a_run_ships_its_best_evaluations_policy_or_its_latest_without_evaluations(tmp_path):
    for episodes, shipped in ((1, "best"), (0, "latest")):
        run = tmp_path / f"run{episodes}"
        with DDPG(config=Config(**{**TINY, "eval_episodes": episodes})) as agent:
            summary = agent.learn(240, run_dir=run)
        assert summary["shipped_checkpoint"] == shipped
        if shipped == "best":
            assert summary["best_eval_step"] < 240  # so best and latest differ and the test can tell
        with DDPG.load(run) as loaded, DDPG.load(run, checkpoint=shipped) as named:
            assert loaded.step == named.step
            for a, b in zip(
                loaded.shipped_policy().parameters(), named.shipped_policy().parameters(), strict=True
            ):
                torch.testing.assert_close(a, b)


def test_evaluate_best_of_a_run_without_latest(tmp_path, capsys):
    run = tmp_path / "run"
    with DDPG(config=Config(**TINY)) as agent:
        agent.learn(80, run_dir=run)
    (run / "checkpoints" / "latest").unlink()  # as if killed before its first `latest`
    capsys.readouterr()
    assert main(["evaluate", str(run), "--checkpoint", "best", "--episodes", "1", "--json"]) == 0
    assert np.isfinite(json.loads(capsys.readouterr().out)["mean_return"])
    assert main(["evaluate", str(run), "--episodes", "1"]) == 0  # the default, best, is there
    assert main(["evaluate", str(run), "--checkpoint", "latest"]) == 2
    assert "no checkpoint 'latest'" in error_line(capsys)


# 7. Callbacks and stop_at_return ---------------------------------------------------------------------


def test_callback_sees_episodes_and_evaluations_and_can_stop(tmp_path):
    run = tmp_path / "run"
    events: list[TrainingEvent] = []

    def callback(event: TrainingEvent) -> bool:
        events.append(event)
        return event.kind != "evaluation"  # stop at the first evaluation

    with DDPG(config=Config(**TINY)) as agent:
        summary = agent.learn(400, run_dir=run, callback=callback)
        assert agent.step == 80 and agent.stop_reason == "callback"
    episodes = [e for e in events if e.kind == "episode"]
    assert [e.step for e in episodes] == [40, 80]
    assert all(isinstance(e.episode_return, float) and e.agent is agent for e in episodes)
    assert events[-1].kind == "evaluation" and events[-1].evaluation is not None
    assert summary["stopped_early"] and summary["stop_reason"] == "callback"
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 80
    meta = json.loads((run / "checkpoints" / "latest" / "meta.json").read_text())
    assert meta["step"] == 80


def test_a_callback_returning_none_does_not_stop():
    with DDPG(config=Config(**TINY)) as agent:
        summary = agent.learn(120, callback=lambda event: None)
    assert agent.step == 120 and not summary["stopped_early"] and summary["stop_reason"] is None


def test_stop_at_return_stops_at_the_first_evaluation_reaching_it(tmp_path):
    with DDPG(config=Config(**TINY, stop_at_return=-1e9)) as agent:
        summary = agent.learn(400)
    assert agent.step == 80
    assert summary["stopped_early"] and summary["stop_reason"] == "stop_at_return"
    with DDPG(config=Config(**TINY, stop_at_return=1e9)) as agent:
        assert agent.learn(160)["stop_reason"] is None


def test_cli_stop_at_return_is_a_success(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [f"{k}={v}" for k, v in TINY.items() if k != "hidden_sizes"]
    args = ["train", "--steps", "400", "--run-dir", str(run), "--set", *sets, "hidden_sizes=[16,16]"]
    assert main([*args, "stop_at_return=-1e9"]) == 0
    assert "stop_at_return" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["total_steps"] == 80


# 8. device: auto -------------------------------------------------------------------------------------


def test_device_auto_is_cuda_when_available_else_cpu(monkeypatch):
    assert Config().loop.device == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    with DDPG(config=Config(**TINY)) as agent:
        assert agent.learner.device.type == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device("auto") == torch.device("cpu")
    assert torch_device("cpu") == torch.device("cpu")
