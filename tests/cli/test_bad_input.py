"""The bad-input catalogue: damaged or hostile checkpoints, finished runs, broken environments and
presets. Each ends as one line `error: …` on stderr and exit 2 (a diverging run: exit 1), no traceback,
and the run directory as it was."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from ddpg import DDPG
from ddpg.cli import main
from ddpg.run.checkpoint import write_manifest
from tests.cli.conftest import FAST, snapshot
from tests.helpers import error_line


class Payload:
    """Unpickling this runs `touch <marker>`: if the marker exists, a checkpoint executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "step_000000100"


def resume_fails(run: Path, capsys, message: str) -> None:
    before = snapshot(run)
    assert main(["resume", str(run)]) == 2
    assert message in error_line(capsys)
    assert snapshot(run) == before


def test_resume_works_on_the_undamaged_copy(run, capsys):
    assert main(["resume", str(run)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("victim", ["model.safetensors", "state.npz", "meta.json"])
def test_hostile_pickle_in_place_of_a_checkpoint_file_is_never_executed(run, victim, tmp_path, capsys):
    marker = tmp_path / "pwned"
    (checkpoint(run) / victim).write_bytes(pickle.dumps(Payload(marker)))
    write_manifest(checkpoint(run))  # the attacker also rewrote the manifest, so checksums pass
    resume_fails(run, capsys, "cannot read")
    assert not marker.exists()


def test_pickled_object_array_inside_the_state_npz_is_never_executed(run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    state = checkpoint(run) / "state.npz"
    with np.load(state) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["noise"] = np.array([Payload(marker)], dtype=object)
    with state.open("wb") as f:
        np.savez(f, **arrays)
    write_manifest(checkpoint(run))
    resume_fails(run, capsys, "cannot read")
    assert not marker.exists()


def test_truncated_safetensors_is_reported_as_truncated(run, capsys):
    path = checkpoint(run) / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    resume_fails(run, capsys, "truncated")


def test_truncated_safetensors_with_a_matching_manifest_cannot_be_read(run, capsys):
    path = checkpoint(run) / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    write_manifest(checkpoint(run))
    resume_fails(run, capsys, "cannot read")


def test_flipped_byte_fails_the_checksum(run, capsys):
    path = checkpoint(run) / "state.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    resume_fails(run, capsys, "fails its checksum")


def test_checkpoint_from_a_newer_format_version_is_refused(run, capsys):
    manifest = checkpoint(run) / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 99}))
    resume_fails(run, capsys, "format version 99")


def test_garbled_training_state_is_refused(run, capsys):
    meta_path = checkpoint(run) / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["training"]["buffer"]
    meta_path.write_text(json.dumps(meta))
    write_manifest(checkpoint(run))
    resume_fails(run, capsys, "training state is incomplete")


def test_resume_of_a_finished_run_is_refused(finished_run, capsys):
    resume_fails(finished_run, capsys, "is finished (step 150 of total_steps 150)")


def test_resume_of_a_directory_without_checkpoints_is_refused(tmp_path, capsys):
    resume_fails(tmp_path, capsys, "no checkpoints/latest")


def test_resume_of_a_missing_directory_is_refused(tmp_path, capsys):
    assert main(["resume", str(tmp_path / "nope")]) == 2
    assert "does not exist" in error_line(capsys)


def test_resume_refuses_logs_shorter_than_at_the_checkpoint(run, capsys):
    (run / "metrics.csv").write_text("step,episode,return,length,wall_time\n")
    resume_fails(run, capsys, "metrics.csv is shorter")


def test_preset_file_with_unknown_keys_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("env_id: Pendulum-v1\nlearning_rate: 0.001\n")
    assert main(["train", "--preset", "mine.yaml"]) == 2
    assert "unknown config key 'learning_rate'" in error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("device=cuda:7", "device 'cuda:7'"),
        ("device=toaster", "device 'toaster'"),
        ("buffer_size=100000000000000", "buffer_size 100000000000000 cannot fit"),
        ("hidden_sizes=[10000000,10000000]", "hidden_sizes"),
        ("on_nonfinite=ignore", "on_nonfinite must be one of stop, skip"),
        ("seed=100000000000000000000", "seed must be in [0, 2**63)"),
        ("max_episode_steps=1e400", "max_episode_steps must be an integer"),
    ],
)
def test_configs_this_machine_cannot_run_are_refused_before_anything_is_written(
    override, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", override]) == 2
    assert message in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_environment_stops_naming_the_step(tmp_path, capsys):
    assert main(["train", "--env", "tests.helpers:NaNEnv", "--run-dir", str(tmp_path / "run"), *FAST]) == 1
    line = error_line(capsys)
    assert "non-finite" in line and "step 5" in line


def test_non_finite_transitions_are_skipped_with_a_warning_when_asked(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--env", "tests.helpers:NaNEnv", "--steps", "100", "--run-dir", str(run), *FAST]
    assert main([*args, "on_nonfinite=skip"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (
        "warning: the environment returned a non-finite observation or reward at step 5: "
        "transition skipped, episode restarted (on_nonfinite=skip)"
    )
    assert all(line.startswith("warning: ") for line in err)


def test_skipped_non_finite_transitions_never_reach_the_buffer():
    from ddpg import DDPG, Config

    config = Config(
        env_id="tests.helpers:NaNEnv",
        hidden_sizes=[8, 8],
        batch_size=4,
        learning_starts=10,
        eval_episodes=0,
        on_nonfinite="skip",
        progress=False,
        video=False,
    )
    agent = DDPG(config=config)
    with pytest.warns(UserWarning, match="transition skipped"):
        agent.learn(50)
    assert len(agent.buffer) == 40  # NaNEnv fails its 5th step of every episode
    assert np.isfinite(agent.buffer.reward[:40]).all()


def test_damaged_replay_state_still_loads_the_weights_but_cannot_resume(run, capsys):
    path = checkpoint(run) / "state.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    DDPG.load(checkpoint(run))  # weights and meta.json are intact: evaluation needs nothing more
    resume_fails(run, capsys, "fails its checksum")
