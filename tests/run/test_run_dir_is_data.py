"""A run directory is data: nothing it names is imported unless the user names it too."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ddpg
from ddpg.cli import main
from ddpg.run.checkpoint import write_manifest
from tests.helpers import error_line

LEGACY = Path(__file__).parents[1] / "fixtures" / "legacy_state_run"
PLANTED = """
import pathlib
pathlib.Path(__file__).with_name("RAN").write_text("imported")
from gymnasium.envs.classic_control.pendulum import PendulumEnv as Env
"""


def plant(tmp_path: Path, env_id: str) -> Path:
    """A copy of a real run whose checkpoints name `env_id`, checksums recomputed as an attacker
    would, with the module it names beside it."""
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run, symlinks=True)
    for meta_file in (run / "checkpoints").glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["config"]["env_id"] = env_id
        meta_file.write_text(json.dumps(meta))
        write_manifest(meta_file.parent)
    (run / "planted.py").write_text(PLANTED)
    return run


@pytest.mark.parametrize("command", [["evaluate", "--episodes", "1"], ["resume", "--steps", "700"]])
def test_a_module_named_by_a_run_directory_is_never_imported(tmp_path, monkeypatch, capsys, command):
    run = plant(tmp_path, "planted:Env")
    monkeypatch.chdir(run)
    monkeypatch.syspath_prepend(str(run))  # even with the run directory on the import path
    assert main([command[0], ".", *command[1:]]) == 2
    line = error_line(capsys)
    assert "names code to import (planted:Env)" in line and "pass --env planted:Env" in line
    assert not (run / "RAN").exists()


def test_python_dash_m_ddpg_does_not_import_from_the_current_directory(tmp_path):
    run = plant(tmp_path, "planted:Env")
    src = str(Path(ddpg.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    for argv in (["evaluate", "."], ["evaluate", ".", "--env", "planted:Env", "--episodes", "1"]):
        done = subprocess.run(
            [sys.executable, "-m", "ddpg", *argv], cwd=run, env=env, capture_output=True, text=True
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        assert not (run / "RAN").exists()


def test_code_the_user_names_is_imported(tmp_path, monkeypatch, capsys):
    run = plant(tmp_path, "planted:Env")
    monkeypatch.syspath_prepend(str(run))
    assert main(["evaluate", str(run), "--env", "planted:Env", "--episodes", "1", "--json"]) == 0
    assert (run / "RAN").read_text() == "imported"
    assert "mean_return" in json.loads(capsys.readouterr().out)


def test_an_env_argument_naming_a_function_needs_trust(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(LEGACY.parent / "legacy_pixel_run", run, symlinks=True)
    for meta_file in (run / "checkpoints").glob("*/meta.json"):
        meta = json.loads(meta_file.read_text())
        meta["config"]["env"]["reward"] = "planted:reward"
        meta_file.write_text(json.dumps(meta))
        write_manifest(meta_file.parent)
    assert main(["evaluate", str(run)]) == 2
    assert "pass --trust planted:reward if you trust it" in error_line(capsys)
