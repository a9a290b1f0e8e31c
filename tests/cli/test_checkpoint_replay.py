"""`checkpoint_replay: latest`: only checkpoints/latest holds the training state (the replay buffer);
the older kept step checkpoints keep the weights, which evaluate, and resuming needs latest."""

import json
import os
from pathlib import Path

import pytest

from ddpg import DDPG
from ddpg.cli import main
from tests.cli.conftest import FAST
from tests.helpers import error_line


def train(run: Path, *settings: str) -> None:
    args = ["train", "--env", "Pendulum-v1", "--steps", "300", "--run-dir", str(run), *FAST]
    assert main([*args, "keep_checkpoints=3", *settings]) == 0


def holds_state(checkpoint: Path) -> bool:
    meta = json.loads((checkpoint / "meta.json").read_text())
    return (checkpoint / "state.npz").exists() and "training" in meta


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("replay") / "run"
    train(run, "checkpoint_replay=latest")
    return run


def test_only_latest_keeps_the_replay_buffer(run, tmp_path):
    steps = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert steps == ["step_000000100", "step_000000200", "step_000000300"]
    assert os.readlink(run / "checkpoints" / "latest") == "step_000000300"
    assert [holds_state(run / "checkpoints" / s) for s in steps] == [False, False, True]

    default = tmp_path / "default"
    train(default)
    assert all(holds_state(p) for p in (default / "checkpoints").glob("step_*"))


def test_an_older_checkpoint_still_evaluates_and_latest_still_resumes(run, capsys):
    args = ["evaluate", str(run), "--checkpoint", "step_000000100", "--episodes", "1", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert main(["resume", str(run), "--steps", "400"]) == 0
    capsys.readouterr()
    kept = sorted((run / "checkpoints").glob("step_*"))
    assert [p.name for p in kept][-1] == "step_000000400"
    assert [holds_state(p) for p in kept] == [False, False, True]


def test_resuming_from_a_weights_only_checkpoint_is_one_line(run, tmp_path, capsys):
    latest = run / "checkpoints" / "latest"
    os.replace(latest, tmp_path / "saved-link")
    os.symlink("step_000000200", latest)
    try:
        assert main(["resume", str(run), "--steps", "500"]) == 2
        assert "holds weights only" in error_line(capsys)
    finally:
        os.replace(tmp_path / "saved-link", latest)


def test_a_damaged_older_checkpoint_is_kept_as_it_is_and_training_goes_on(tmp_path, capsys):
    run = tmp_path / "run"
    train(run)  # checkpoint_replay: all, so every step checkpoint holds its state
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("checkpoint_replay: all", "checkpoint_replay: latest"))
    damaged = run / "checkpoints" / "step_000000200" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"x")
    assert main(["resume", str(run), "--steps", "400"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "step_000000200" in warning[0] and "fails its checksum" in warning[0]
    kept = {p.name: holds_state(p) for p in (run / "checkpoints").glob("step_*")}
    assert kept == {"step_000000200": True, "step_000000300": False, "step_000000400": True}


def test_a_run_killed_at_its_final_checkpoint_is_finished_weights_only(tmp_path, capsys):
    # Killed after writing its final checkpoint, before releasing the older ones and writing its summary;
    # step 100 was being rewritten, and the kill left it under its temporary old name.
    run = tmp_path / "run"
    train(run)  # every step checkpoint holds its state, as the killed session left them
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("checkpoint_replay: all", "checkpoint_replay: latest"))
    (run / "summary.json").unlink()
    checkpoints = run / "checkpoints"
    os.replace(checkpoints / "step_000000100", checkpoints / ".old-step_000000100-0123abcd")
    assert main(["resume", str(run)]) == 0
    assert "had trained all 300 steps" in capsys.readouterr().out
    kept = {p.name: holds_state(p) for p in (run / "checkpoints").glob("step_*")}
    assert kept == {"step_000000100": False, "step_000000200": False, "step_000000300": True}
    assert (run / "summary.json").exists()


def test_finish_refuses_a_run_it_did_not_resume(tmp_path):
    run = tmp_path / "run"
    train(run, "checkpoint_replay=latest")
    (run / "summary.json").unlink()
    other = tmp_path / "other"
    train(other)
    with DDPG.resume(run) as agent, pytest.raises(ValueError, match="needs the run this agent resumed"):
        agent.finish(other)
    assert all(holds_state(p) for p in (other / "checkpoints").glob("step_*"))
