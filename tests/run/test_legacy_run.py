"""Run directories written by an earlier ddpg still evaluate and resume exactly.

`tests/data/legacy_*_run` were written by ddpg before the package was split into wings (flat config,
TD3 + prioritized replay + 3-step returns + obs_norm on Pendulum; a pixel LaneFollowing run with
2-step returns). Each keeps two step checkpoints, so pointing `latest` back at the first one and
resuming must write again exactly the rows the old code wrote after it.
"""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from ddpg.cli import main

DATA = Path(__file__).parents[1] / "fixtures"
LOGS = ("metrics.csv", "updates.csv", "eval.csv")
RUNS = {"legacy_state_run": "step_000000300", "legacy_pixel_run": "step_000000120"}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:  # wall_time is the one column a resumed run cannot reproduce
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]


@pytest.fixture(params=sorted(RUNS))
def legacy(request, tmp_path) -> tuple[Path, Path, str]:
    original = DATA / request.param
    run = tmp_path / request.param
    shutil.copytree(original, run, symlinks=True)
    return original, run, RUNS[request.param]


def test_legacy_run_evaluates_to_its_last_logged_evaluation(legacy, capsys):
    original, run, _ = legacy
    assert main(["evaluate", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    last = rows(original / "eval.csv")[-1]
    assert result["mean_return"] == pytest.approx(float(last["mean_return"]), abs=1e-3)


def test_legacy_run_best_checkpoint_still_loads(legacy, capsys):
    _, run, _ = legacy
    assert main(["evaluate", str(run), "--checkpoint", "best", "--episodes", "1", "--json"]) == 0
    assert "mean_return" in json.loads(capsys.readouterr().out)


def test_legacy_run_resumed_from_its_earlier_checkpoint_writes_the_rows_it_wrote_then(legacy):
    original, run, earlier = legacy
    latest = run / "checkpoints" / "latest"
    latest.unlink()
    os.symlink(earlier, latest)
    (run / "summary.json").unlink()
    assert main(["resume", str(run)]) == 0
    for log in LOGS:
        assert rows(run / log) == rows(original / log), log
