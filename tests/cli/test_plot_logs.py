"""`ddpg plot` on logs that are damaged, empty or missing: one `error: …` line naming the file and
exit 2, no traceback and no figure; a run without updates.csv or eval.csv is plotted with a warning."""

from pathlib import Path

import pytest

from ddpg.cli import main
from ddpg.run.logs import EVAL_COLUMNS, METRICS_COLUMNS, UPDATES_COLUMNS
from tests.helpers import error_line


def fake_run(root: Path) -> Path:
    """A run directory's three logs, a few rows each, as a run writes them."""
    root.mkdir()
    (root / "metrics.csv").write_text(
        ",".join(METRICS_COLUMNS) + "\n" + "".join(f"{50 * i},{i},-{i}.5,50,{i}.0\n" for i in range(1, 5))
    )
    (root / "updates.csv").write_text(
        ",".join(UPDATES_COLUMNS) + "\n" + "".join(f"{50 * i},0.5,-1.0,0.25,1.0\n" for i in range(1, 5))
    )
    (root / "eval.csv").write_text(",".join(EVAL_COLUMNS) + "\n100,-3.0,1.0\n200,-2.0,0.5\n")
    return root


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("metrics.csv", "", "metrics.csv is empty"),
        ("updates.csv", "", "updates.csv is empty"),
        ("eval.csv", b"\xff\xfe\x00garbage", "cannot read"),
        ("metrics.csv", "step,episode,return,length,wall_time\n50,1,lots,50,1.0\n", "line 2: return 'lots'"),
        ("updates.csv", "step,critic_loss,actor_loss,td_error,q_mean\n50,1,2\n", "line 2: 3 values for 5"),
        ("eval.csv", "step,mean\n100,1\n", "has no column 'mean_return'"),
        ("metrics.csv", "\x00\x01\x02 not,a,log\n1,2,3\n", "has no column 'step'"),
        (
            "updates.csv",
            "step,critic_loss,actor_loss,td_error,q_mean\n" + "x" * 5000 + ",1,2,3,4\n",
            "line 2: step",
        ),
    ],
)
def test_damaged_logs_are_one_line_naming_the_file(name, content, message, tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    if isinstance(content, bytes):
        (run / name).write_bytes(content)
    else:
        (run / name).write_text(content)
    assert main(["plot", str(run)]) == 2
    line = error_line(capsys)
    assert str(run / name) in line and message in line
    assert len(line) < 300
    assert not (run / "plots").exists()


def test_one_damaged_run_among_several_writes_no_figure(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good, bad = fake_run(tmp_path / "good"), fake_run(tmp_path / "bad")
    (bad / "eval.csv").write_text("step,mean_return,std_return\n100,x,1\n")
    assert main(["plot", str(good), str(bad)]) == 2
    assert "eval.csv, line 2: mean_return 'x' is not a number" in error_line(capsys)
    assert not (tmp_path / "comparison.png").exists()


@pytest.mark.parametrize(("missing", "what"), [("updates.csv", "TD error"), ("eval.csv", "evaluations")])
def test_a_run_without_an_optional_log_is_plotted_with_a_warning(missing, what, tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    (run / missing).unlink()
    assert main(["plot", str(run)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {run} has no {missing}; its {what}")
    assert (run / "plots" / "training.png").stat().st_size > 0


def test_a_run_with_only_headers_is_plotted(tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    for name, columns in (("metrics.csv", METRICS_COLUMNS), ("updates.csv", UPDATES_COLUMNS)):
        (run / name).write_text(",".join(columns) + "\n")
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().err == ""


def test_a_damaged_run_in_a_grouped_plot_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = fake_run(tmp_path / "run")
    (run / "config.yaml").write_text("tau: 0.01\n")
    (run / "summary.json").write_text("{not json")
    assert main(["plot", str(run), "--group-by", "tau"]) == 2
    assert f"cannot read {run / 'summary.json'}" in error_line(capsys)
    assert not (tmp_path / "comparison.png").exists()
