import json

import numpy as np
import pytest
import yaml
from rliable import metrics
from scipy.stats import trim_mean

from ddpg.cli import main
from ddpg.experiments.compare import (
    eval_auc,
    find_runs,
    group_runs,
    iqm_interval,
    iqm_intervals,
    load_run,
    performance_profiles,
    summary_markdown,
)


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


def test_iqm_is_the_trimmed_mean_of_the_seeds_and_its_interval_brackets_it():
    finals = np.array([-300.0, -200.0, -150.0, -400.0, -100.0, -250.0, -1200.0, -180.0])
    interval = iqm_interval(finals)
    assert interval.iqm == pytest.approx(trim_mean(finals, 0.25))
    assert interval.iqm == pytest.approx(metrics.aggregate_iqm(finals[:, None]))
    assert -1200 <= interval.low < interval.iqm < interval.high <= -100


def test_each_column_gets_its_own_iqm_and_interval():
    scores = np.random.default_rng(0).normal(size=(7, 4)) * [1, 10, 100, 1000]
    point, low, high = iqm_intervals(scores)
    assert point == pytest.approx(trim_mean(scores, 0.25, axis=0))
    assert np.all(low < point) and np.all(point < high)
    assert np.all(np.diff(high - low) > 0)  # each column's width follows its own spread


def test_the_interval_narrows_with_more_seeds():
    finals = np.array([-300.0, -200.0, -150.0, -400.0, -100.0])
    widths = [(lambda i: i.high - i.low)(iqm_interval(np.tile(finals, k))) for k in (1, 4, 16)]
    assert widths[1] < 0.7 * widths[0] and widths[2] < 0.7 * widths[1]


def test_intervals_are_reproducible_and_leave_numpy_global_generator_alone():
    finals = np.random.default_rng(1).normal(size=6)
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    first = iqm_interval(finals, seed=5)
    assert np.random.rand() == expected
    assert iqm_interval(finals, seed=5) == first


def test_the_interval_of_one_seed_is_its_value():
    point, low, high = iqm_intervals(np.array([[5.0, 6.0]]))
    assert point.tolist() == low.tolist() == high.tolist() == [5.0, 6.0]


def test_group_runs_ranks_settings_by_iqm_final_eval(runs):
    settings = group_runs([load_run(r) for r in runs], ["tau"])
    assert [s.values for s in settings] == [{"tau": 0.01}, {"tau": 0.1}]
    assert settings[0].final.iqm == pytest.approx(-250.0)  # the mean, for two seeds
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
    few = summary_markdown(group_runs([load_run(r) for r in runs], ["tau"]))
    assert "Fewer than 5 seeds (tau=0.01, tau=0.1)" in few and "wide" in few
    many = [fake_run(runs[0].parent / f"c{seed}", 0.5, seed, [1.0, 2.0, 3.0 + seed]) for seed in range(5)]
    assert "Fewer than" not in summary_markdown(group_runs([load_run(r) for r in many], ["tau"]))


@pytest.fixture
def one_collapse(tmp_path):
    """Five seeds of tau=0.5 where one collapsed, five steady seeds of tau=0.05 a little lower."""
    a = [
        fake_run(tmp_path / f"a{i}", 0.5, i, [0.0, 50.0, r]) for i, r in enumerate([100, 90, 110, 105, -1000])
    ]
    b = [fake_run(tmp_path / f"b{i}", 0.05, i, [0.0, 40.0, r]) for i, r in enumerate([50, 60, 55, 45, 52])]
    return a + b


def test_one_collapsed_seed_does_not_decide_the_ranking(one_collapse):
    settings = group_runs([load_run(r) for r in one_collapse], ["tau"])
    assert [s.values["tau"] for s in settings] == [0.5, 0.05]
    assert settings[0].final.iqm == pytest.approx(trim_mean([100, 90, 110, 105, -1000], 0.25))
    assert settings[0].final_mean == pytest.approx(-119.0)
    (row,) = [line for line in summary_markdown(settings).splitlines() if line.startswith("| 1 |")]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    final = settings[0].final
    assert cells[:5] == [
        "1",
        "tau=0.5",
        "5",
        f"{final.iqm:.1f} [{final.low:.1f}, {final.high:.1f}]",
        "-119.0",
    ]


def test_performance_profiles_give_the_fraction_of_seeds_above_each_threshold(one_collapse):
    settings = group_runs([load_run(r) for r in one_collapse], ["tau"])
    taus, profiles = performance_profiles(settings)
    assert taus[0] == -1000 and taus[-1] == 110
    at_zero = int(np.searchsorted(taus, 0.0))
    assert profiles["tau=0.5"].fraction[at_zero] == pytest.approx(0.8)
    assert profiles["tau=0.05"].fraction[at_zero] == pytest.approx(1.0)
    for p in profiles.values():
        assert p.fraction[-1] == 0.0
        assert np.all(p.low <= p.fraction) and np.all(p.fraction <= p.high)
