"""Run directories written by an earlier ddpg still evaluate and resume.

`tests/fixtures/legacy_*_run` were written by ddpg before the package was split into wings (flat
config, TD3 + prioritized replay + 3-step returns + obs_norm on Pendulum; a pixel LaneFollowing run
with 2-step returns) on a 2-core Intel Xeon. Each keeps two step checkpoints, so pointing `latest` back
at the first one and resuming must write again the rows the old code wrote after it.

Digit for digit only on a CPU whose kernels round as that Xeon's did: MKL's SGEMM and oneDNN pick their
kernels by CPU vendor and instruction set, and sum float32 products in a different order on, say, an
AVX-512 AMD EPYC. There a run trained from step 0 with the fixture's config parts from the fixture in
the last float32 digit before any checkpoint (the evaluation at step 200, the updates from step 239),
the commit that wrote the fixtures resumes them to the very rows today's code writes, and the last
digit grows to ~2.5e-6 relative over 300 updates. So the counts (step, episode, length) and the
number of rows are compared exactly, and returns and losses within ROUNDING: 40x above that drift, and
100x below what a real break of the resume moves (an Adam step count, a PER beta or an obs_norm count
off by one moved some logged value by 1e-2 to 4 relative). That a resume is exact on the machine that
wrote the checkpoint is `tests/run/test_resume.py`'s to check.
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
COUNTS = ("step", "episode", "length")  # no rounding reaches them: compared exactly
ROUNDING = 1e-4  # relative, for the float columns (returns, losses, Q): see the module's docstring
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
    assert main(["evaluate", str(run), "--checkpoint", "latest", "--json"]) == 0
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
        resumed, written = rows(run / log), rows(original / log)
        assert len(resumed) == len(written), log
        for i, (got, want) in enumerate(zip(resumed, written, strict=True)):
            assert got.keys() == want.keys(), log
            counts = [c for c in COUNTS if c in want]
            assert {c: got[c] for c in counts} == {c: want[c] for c in counts}, (log, i)
            floats = [c for c in want if c not in COUNTS]
            expected = pytest.approx({c: float(want[c]) for c in floats}, rel=ROUNDING)
            assert {c: float(got[c]) for c in floats} == expected, (log, i)
