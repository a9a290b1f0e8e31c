"""bench/algos.py: the learning benchmark's table (IQM and CI over seeds of re-evaluated policies)."""

from pathlib import Path

import pytest
from scipy.stats import trim_mean

from ddpg.cli import main as ddpg_main
from ddpg.experiments.compare import iqm_interval
from tests.bench import script

algos = script("algos")

FINALS = [3247.9, 3394.5, 3607.5, 136.4, 3500.0]
BESTS = [3464.7, 3546.4, 3651.0, 3240.1, 3600.0]


def results(seeds: int) -> list:
    return [
        algos.RunResult(
            Path(f"run{s}"),
            "Hopper-v5",
            "td3",
            s,
            1_000_000,
            3300.0 + s,
            3600.0 + s,
            250_000,
            3600.0,
            270.0,
            3000.0,
            reevaluated=(("latest", FINALS[s]), ("best", BESTS[s])),
            reevaluation_episodes=100,
        )
        for s in range(seeds)
    ]


def cells(table: str) -> tuple[list[str], list[str]]:
    """The header's and the one data row's cells."""
    header, row = [line for line in table.splitlines() if line.startswith("| ")]
    return [c.strip() for c in header.split("|")[1:-1]], [c.strip() for c in row.split("|")[1:-1]]


def test_table_reports_the_iqm_over_seeds_of_each_re_evaluated_policy_with_its_interval():
    table = algos.table(results(5))
    header, row = cells(table)
    final = header.index("final (`checkpoints/latest`), 100 fresh episodes")
    best = header.index("`checkpoints/best` (shipped), 100 fresh episodes")
    for column, values in ((final, FINALS), (best, BESTS)):
        interval = iqm_interval(values)
        assert interval.iqm == pytest.approx(trim_mean(values, 0.25))
        assert row[column] == f"{interval.iqm:.1f} [{interval.low:.1f}, {interval.high:.1f}]"
    assert "IQM over seeds [95% stratified bootstrap CI]" in table
    assert "Fewer than" not in table


def test_table_over_fewer_than_five_seeds_says_its_intervals_are_wide():
    table = algos.table(results(3))
    assert "Fewer than 5 seeds (Hopper-v5 td3)" in table and "wide" in table


def test_table_command_re_evaluates_the_shipped_and_best_policies_on_100_fresh_episodes(tmp_path, capsys):
    from ddpg import DDPG

    run = tmp_path / "run"
    tiny = ["hidden_sizes=[16,16]", "batch_size=16", "learning_starts=50", "max_episode_steps=20"]
    train = ["train", "--env", "Pendulum-v1", "--steps", "100", "--run-dir", str(run), "--set", *tiny]
    assert ddpg_main([*train, "eval_every=50", "eval_episodes=1", "progress=false", "video=false"]) == 0
    capsys.readouterr()
    assert algos.main(["table", str(run)]) == 0
    header, row = cells(capsys.readouterr().out)
    with DDPG.load(run) as agent:  # what `ddpg evaluate RUN` runs, on seeds training never used
        shipped = agent.evaluate(100, agent.config.loop.seed + algos.REEVALUATION_SEED_OFFSET).mean_return
    column = header.index("`checkpoints/best` (shipped), 100 fresh episodes")
    assert row[column] == f"{shipped:.1f} [{shipped:.1f}, {shipped:.1f}]"
    assert row[header.index("final (`checkpoints/latest`), 100 fresh episodes")] != "–"
