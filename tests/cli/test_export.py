"""`ddpg export`: a run's policy to one file; every bad input is one line, exit 2, nothing written."""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import torch

from ddpg import DDPG
from ddpg.cli import main
from tests.cli.conftest import snapshot
from tests.helpers import error_line


def test_export_writes_the_policy_evaluate_runs(finished_run, tmp_path, capsys):
    out = tmp_path / "policy.pt"
    assert main(["export", str(finished_run), "--out", str(out)]) == 0
    shipped = "checkpoints/best, step 100"  # the run's best evaluation was at step 100, not its last
    assert capsys.readouterr().out.strip() == f"torchscript policy of {finished_run} ({shipped}): {out}"
    obs = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    with DDPG.load(finished_run) as agent:  # the shipped policy, as export takes it
        expected = np.stack([agent.act(o) for o in obs])
    np.testing.assert_allclose(torch.jit.load(str(out))(torch.from_numpy(obs)).numpy(), expected, atol=1e-5)


def test_export_takes_the_checkpoint_asked_for(finished_run, tmp_path):
    out = tmp_path / "policy.bin"
    assert (
        main(["export", str(finished_run), "--checkpoint", "best", "--format", "npz", "--out", str(out)]) == 0
    )
    summary = json.loads((finished_run / "summary.json").read_text())
    assert json.loads(str(np.load(out)["description"]))["step"] == summary["best_eval_step"] == 100


BAD = {
    "unknown checkpoint": (["--checkpoint", "step_7", "--out", "{out}/p.npz"], "no checkpoint 'step_7'"),
    "unknown format": (["--format", "tflite", "--out", "{out}/p.npz"], "invalid choice: 'tflite'"),
    "no format": (["--out", "{out}/p.bin"], "name the format (--format onnx|torchscript|npz)"),
    "out under a file": (["--out", "{out}/file.txt/p.npz"], "a part of the path is a file"),
    "out is a directory": (["--format", "npz", "--out", "{out}/dir"], "it is a directory"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_writes_nothing(finished_run, tmp_path, capsys, case):
    args, message = BAD[case]
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    before, run_before = snapshot(tmp_path), snapshot(finished_run)
    code = main(["export", str(finished_run), *(a.format(out=tmp_path) for a in args)])
    assert code == 2 and message in error_line(capsys)
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file.txt"]
    assert snapshot(finished_run) == run_before


@pytest.mark.parametrize("victim", ["checkpoints/latest/model.safetensors", "config.yaml"])
def test_an_out_that_is_a_file_of_the_run_is_refused(finished_run, capsys, victim):
    before = snapshot(finished_run)
    code = main(["export", str(finished_run), "--format", "npz", "--out", str(finished_run / victim)])
    assert code == 2 and "is a file of the run" in error_line(capsys)
    assert snapshot(finished_run) == before


def test_a_directory_without_checkpoints_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "p.npz")]) == 2
    assert "has no checkpoint" in error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_checkpoint_link_whose_checkpoint_is_gone_is_not_offered(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run, symlinks=True)
    shutil.rmtree(run / "checkpoints" / os.readlink(run / "checkpoints" / "latest"))
    (run / "checkpoints" / ".tmp-step_000000200-0a1b2c3d").mkdir()  # what a kill mid-checkpoint leaves
    assert main(["export", str(run), "--checkpoint", "latest", "--out", str(tmp_path / "p.npz")]) == 2
    line = error_line(capsys)
    assert "has no checkpoint 'latest'; it keeps: best, best_step_000000100, step_000000100" in line
    assert not (tmp_path / "p.npz").exists()


def test_onnx_without_the_export_extra_says_what_to_install(finished_run, tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else find_spec(n, *a))
    assert main(["export", str(finished_run), "--out", str(tmp_path / "p.onnx")]) == 2
    assert error_line(capsys) == "error: --format onnx needs onnx: pip install 'ddpg[export]'"
    assert list(tmp_path.iterdir()) == []
