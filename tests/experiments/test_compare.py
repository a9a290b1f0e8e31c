import json

import numpy as np
import pytest
import yaml

from ddpg.cli import main
from ddpg.experiments.compare import bootstrap_mean_ci, eval_auc, find_runs, group_runs, load_run


def fake_run(root, tau, seed, returns, steps=(100, 200, 300)):
    """A finished run directory with a given evaluation curve, without training."""
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump({"tau": tau, "seed": seed, "noise": {"sigma": 0.1}}))
    rows = "".join(f"{s},{r},0.0\n" for s, r in zip(steps, returns))
    (root / "eval.csv").write_text("step,mean_return,std_return\n" + rows)
    (root / "metrics.csv").write_text("step,episode,return,length,wall_time\n")
    (root / "summary.json").write_text(json.dumps({"train_steps_per_second": 100.0}))
    return root


@pytest.fixture
def runs(tmp_path):
    return [
        fake_run(tmp_path / "a0", 0.01, 0, [-900, -500, -200]),
        fake_run(tmp_path / "a1", 0.01, 1, [-800, -400, -300]),
        fake_run(tmp_path / "b0", 0.1, 0, [-900, -900, -1000]),
        fake_run(tmp_path / "b1", 0.1, 1, [-1000, -800, -900]),
    ]


def test_eval_auc_is_the_time_average_of_the_eval_curve():
    assert eval_auc(np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 10.0])) == pytest.approx(7.5)


def test_bootstrap_interval_brackets_the_mean_of_the_seeds():
    samples = np.array([[-300.0], [-200.0], [-150.0], [-400.0]])
    mean, low, high = bootstrap_mean_ci(samples, np.random.default_rng(0))
    assert mean[0] == pytest.approx(-262.5)
    assert low[0] < mean[0] < high[0]
    assert low[0] >= -400 and high[0] <= -150


def test_bootstrap_interval_of_one_seed_is_its_value():
    mean, low, high = bootstrap_mean_ci(np.array([[5.0, 6.0]]), np.random.default_rng(0))
    assert mean.tolist() == low.tolist() == high.tolist() == [5.0, 6.0]


def test_group_runs_ranks_settings_by_mean_final_eval(runs):
    settings = group_runs([load_run(r) for r in runs], ["tau"])
    assert [s.values for s in settings] == [{"tau": 0.01}, {"tau": 0.1}]
    assert settings[0].final.mean == pytest.approx(-250.0)
    assert settings[0].curve.tolist() == [-850.0, -450.0, -250.0]
    assert settings[1].best == pytest.approx(-850.0)


def test_group_runs_reads_dotted_keys(runs):
    (settings,) = group_runs([load_run(r) for r in runs], ["noise.sigma"])
    assert settings.values == {"noise.sigma": 0.1} and len(settings.runs) == 4


def test_a_directory_of_runs_stands_for_its_runs(runs, tmp_path):
    assert find_runs([tmp_path]) == sorted(runs)


def test_plot_group_by_writes_the_comparison_figure(runs, tmp_path, capsys):
    out = tmp_path / "cmp.png"
    assert main(["plot", *map(str, runs), "--group-by", "tau", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert table.index("tau=0.01") < table.index("tau=0.1")


def test_plot_group_by_an_unknown_key_is_a_usage_error(runs, tmp_path, capsys):
    out = tmp_path / "cmp.png"
    assert main(["plot", *map(str, runs), "--group-by", "taux", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --group-by taux")
    assert not out.exists()


def test_a_summary_over_fewer_than_five_seeds_says_its_interval_is_wide(runs):
    from ddpg.experiments.compare import summary_markdown

    few = summary_markdown(group_runs([load_run(r) for r in runs], ["tau"]))
    assert "Fewer than 5 seeds (tau=0.01, tau=0.1)" in few and "wide" in few
    many = [fake_run(runs[0].parent / f"c{seed}", 0.5, seed, [1.0, 2.0, 3.0 + seed]) for seed in range(5)]
    assert "Fewer than" not in summary_markdown(group_runs([load_run(r) for r in many], ["tau"]))
