"""`ddpg resume` and a config.yaml edited between sessions: an edit that would change what the run
computes is refused by key (one line, exit 2, nothing changed); the keys safe to change on resume are
honoured; a config.yaml written flat (earlier versions) but equal to the checkpoint's is no edit."""

import shutil
from pathlib import Path

import pytest
import yaml

from ddpg.cli import main
from ddpg.config import flatten, load_config
from tests.cli.conftest import snapshot
from tests.helpers import error_line
from tests.run.test_resume import assert_same_logs


def edit(run: Path, **changes) -> None:
    """Rewrite config.yaml with flat `changes` (dotted keys into mappings), nested as a run writes it."""
    data = yaml.safe_load((run / "config.yaml").read_text())
    for key, value in changes.items():
        *parents, name = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[name] = value
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({"optimisation.tau": 0.5}, "(tau)"),
        ({"optimisation.batch_size": 8, "exploration.noise.sigma": 0.3}, "(batch_size, noise.sigma)"),
        ({"environment.kwargs": {"g": 5.0}}, "(env.g)"),
        ({"loop.seed": 7, "loop.total_steps": 300}, "(seed)"),
    ],
)
def test_an_edited_config_is_refused_naming_the_keys(run, changes, keys, capsys):
    edit(run, **changes)
    before = snapshot(run)
    assert main(["resume", str(run)]) == 2
    line = error_line(capsys)
    assert f"{run / 'config.yaml'} was edited since the checkpoint {keys}; " in line
    safe = "total_steps, progress, tensorboard, keep_checkpoints, checkpoint_replay"
    assert f"only {safe} may change on resume" in line
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tau: [unclosed\n", "is not valid YAML"),
        (
            "learning_rate: 0.1\n",
            "unknown config key 'learning_rate' (did you mean: actor_lr, critic_lr, encoder_lr?)",
        ),
        ("- a list\n", "must hold a mapping of config keys"),
        ("tau: 7\n", "tau must be in (0, 1]"),
    ],
)
def test_a_config_yaml_that_cannot_be_read_is_one_line(run, content, message, capsys):
    (run / "config.yaml").write_text(content)
    before = snapshot(run)
    assert main(["resume", str(run)]) == 2
    line = error_line(capsys)
    assert str(run / "config.yaml") in line and message in line
    assert "fix or delete it" in line
    assert snapshot(run) == before


def test_a_flat_config_yaml_equal_to_the_checkpoints_is_no_edit(run, capsys):
    flat = flatten(load_config(run / "config.yaml").to_dict())
    (run / "config.yaml").write_text(yaml.safe_dump(flat))
    assert main(["resume", str(run)]) == 0
    assert "resuming" in capsys.readouterr().out


def test_safe_keys_edited_in_config_yaml_are_honoured(run, capsys):
    edit(run, **{"loop.total_steps": 200, "logging.keep_checkpoints": 5, "logging.tensorboard": True})
    assert main(["resume", str(run)]) == 0
    assert f"resuming {run} at step 100 of 200" in capsys.readouterr().out
    config = load_config(run / "config.yaml")
    assert (config.loop.total_steps, config.logging.keep_checkpoints) == (200, 5)
    assert (run / "checkpoints" / "step_000000200").is_dir()


def test_steps_on_the_command_line_win_over_an_edited_total(run, capsys):
    edit(run, **{"loop.total_steps": 300})
    assert main(["resume", str(run), "--steps", "200"]) == 0
    assert f"resuming {run} at step 100 of 200" in capsys.readouterr().out


def test_a_run_without_config_yaml_resumes_and_writes_it_again(run, capsys):
    (run / "config.yaml").unlink()
    assert main(["resume", str(run)]) == 0
    assert load_config(run / "config.yaml").loop.total_steps == 150


def test_a_start_killed_before_its_first_checkpoint_resumes_from_the_start(finished_run, tmp_path, capsys):
    # What a SIGKILL between writing config.yaml and the step-0 checkpoint leaves: the config, log
    # headers, the lock file of a dead process and a half-written checkpoint directory.
    killed = tmp_path / "killed"
    killed.mkdir()
    shutil.copy(finished_run / "config.yaml", killed / "config.yaml")
    for log in ("metrics.csv", "updates.csv", "eval.csv"):
        (killed / log).write_text((finished_run / log).read_text().splitlines()[0] + "\n")
    (killed / ".lock").write_text("999999")
    (killed / "checkpoints" / ".tmp-step_000000000").mkdir(parents=True)
    assert main(["resume", str(killed)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert_same_logs(finished_run, killed)
    assert sorted(p.name for p in (killed / "checkpoints").iterdir() if p.name.startswith(".")) == []


def test_a_directory_without_checkpoint_or_config_is_still_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "updates.csv").write_text("step\n")
    assert main(["resume", str(empty)]) == 2
    assert "has no checkpoints/latest to resume from" in error_line(capsys)
