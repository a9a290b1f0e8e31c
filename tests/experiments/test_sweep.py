"""`ddpg sweep` through the embedded Ray: two Ray sessions in all, tiny nets and a few hundred steps."""

import csv
import json
import os

import numpy as np
import pytest
from scipy.stats import trim_mean

from ddpg.cli import main
from ddpg.config import ConfigError
from ddpg.experiments.backends import run_trial
from ddpg.experiments.sweep import SweepSpec, parse_grid, plan, prepare, split_values

pytest.importorskip("ray.tune")

TINY = [
    "hidden_sizes=[8,8]",
    "batch_size=16",
    "learning_starts=50",
    "max_episode_steps=50",
    "eval_every=100",
    "eval_episodes=1",
    "log_every=50",
    "video=false",
]
STEPS = 300


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def table_rows(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def final_and_auc(run_dir):
    rows = read_rows(run_dir / "eval.csv")
    steps = np.array([float(r["step"]) for r in rows])
    returns = np.array([float(r["mean_return"]) for r in rows])
    auc = np.trapezoid(returns, steps) / (steps[-1] - steps[0])
    return returns[-1], auc


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2×2 grid × 2 seeds, interrupted after two finished trials and one half-written one, then
    finished by `ddpg sweep --resume` (one Ray session); HOME points at an empty directory."""
    root = tmp_path_factory.mktemp("sweep")
    home = root / "home"
    home.mkdir()
    directory = root / "out"
    spec = SweepSpec(
        grid=parse_grid(["tau=0.005,0.05", "noise.sigma=0.1,0.4"]),
        seeds=2,
        env="Pendulum-v1",
        steps=STEPS,
        overrides=TINY,
    )
    trials = prepare(spec, directory)
    directory.mkdir()
    spec.save(directory / "sweep.yaml")
    runs = directory / "runs"
    for trial in trials[:2]:
        assert run_trial(trial.config.to_dict(), str(runs / trial.name))["status"] == "ok"
    before = {t.name: (runs / t.name / "metrics.csv").read_bytes() for t in trials[:2]}
    killed = runs / trials[2].name
    killed.mkdir()
    (killed / "metrics.csv").write_text("step,episode,return,length,wall_time\n50,0,-1.0,50,0.1\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        code = main(["sweep", "--resume", str(directory)])
    return {"dir": directory, "trials": trials, "before": before, "code": code, "home": home}


def test_resume_reruns_only_trials_without_summary(swept):
    runs = swept["dir"] / "runs"
    assert swept["code"] == 0
    for name, metrics in swept["before"].items():
        assert (runs / name / "metrics.csv").read_bytes() == metrics
    killed = runs / swept["trials"][2].name
    assert (killed / "summary.json").is_file()
    assert read_rows(killed / "metrics.csv")[0]["return"] != "-1.0"


def test_every_trial_is_a_run_directory_with_a_row_in_results(swept):
    rows = read_rows(swept["dir"] / "results.csv")
    assert [r["trial"] for r in rows] == [t.name for t in swept["trials"]]
    assert all(r["status"] == "ok" for r in rows)
    for trial in swept["trials"]:
        assert (swept["dir"] / "runs" / trial.name / "summary.json").is_file()
    assert {(r["tau"], r["noise.sigma"], r["seed"]) for r in rows} == {
        (t, s, seed) for t in ("0.005", "0.05") for s in ("0.1", "0.4") for seed in ("0", "1")
    }


def test_results_columns_are_the_trial_its_grid_values_then_its_outcome(swept):
    with open(swept["dir"] / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == [
        "trial",
        "tau",
        "noise.sigma",
        "seed",
        "status",
        "final_eval",
        "eval_auc",
        "best_eval",
        "steps_per_s",
        "wall_time_s",
        "error",
        "run_dir",
    ]


def test_results_equal_the_numbers_recomputed_from_run_directories(swept):
    for row in read_rows(swept["dir"] / "results.csv"):
        final, auc = final_and_auc(swept["dir"] / row["run_dir"])
        assert float(row["final_eval"]) == pytest.approx(final)
        assert float(row["eval_auc"]) == pytest.approx(auc)


def test_summary_ranks_settings_by_the_iqm_final_eval_over_seeds(swept):
    finals = {}
    for row in read_rows(swept["dir"] / "results.csv"):
        key = f"tau={row['tau']}, noise.sigma={row['noise.sigma']}"
        finals.setdefault(key, []).append(final_and_auc(swept["dir"] / row["run_dir"])[0])
    ranking = sorted(finals, key=lambda k: -trim_mean(finals[k], 0.25))
    table = table_rows((swept["dir"] / "summary.md").read_text())
    assert len(table) == 5  # header and four settings
    for rank, key in enumerate(ranking, 1):
        cells = [c.strip() for c in table[rank].split("|")[1:-1]]
        assert cells[:3] == [str(rank), key, "2"]
        assert cells[3].startswith(f"{trim_mean(finals[key], 0.25):.1f} [")
        assert cells[4] == f"{np.mean(finals[key]):.1f}"


def test_sweep_writes_the_comparison_figure_and_spec(swept):
    assert (swept["dir"] / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert SweepSpec.load(swept["dir"] / "sweep.yaml").seeds == 2


def test_sweep_leaves_no_ray_files_in_the_home_directory(swept):
    assert not (swept["home"] / "ray_results").exists()
    assert not (swept["home"] / ".ray").exists()


def test_trials_write_tensorboard_events(swept):
    for trial in swept["trials"]:
        assert list((swept["dir"] / "runs" / trial.name).glob("events.out.tfevents.*")), trial.name


def test_plot_group_by_gives_the_sweep_ranking(swept, tmp_path, capsys):
    out = tmp_path / "again.png"
    assert main(["plot", str(swept["dir"] / "runs"), "--group-by", "tau,noise.sigma", "--out", str(out)]) == 0
    printed = table_rows(capsys.readouterr().out)
    assert printed[1:] == table_rows((swept["dir"] / "summary.md").read_text())[1:]


def test_a_trial_failing_at_run_time_is_reported_and_the_others_finish(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["sweep", "--grid", "env={g: 9.0},{bogus: 1}", "--seeds", "1", "--steps", "200", "--out", str(out)]
    assert main([*args, "--set", *TINY]) == 1
    assert "bogus" in capsys.readouterr().err
    ok, failed = read_rows(out / "results.csv")
    assert ok["status"] == "ok" and (out / ok["run_dir"] / "summary.json").is_file()
    assert failed["status"] == "error" and "bogus" in failed["error"]
    assert "bogus" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "tau"], "--grid expects key=v1,v2"),
        (["--grid", "tau=0.01,2"], "tau must be in (0, 1]"),
        (["--grid", "taux=0.1"], "unknown config key 'taux'"),
        (["--grid", "tau=[0.1"], "not valid YAML"),
        (["--grid", "seed=1,2"], "--seeds"),
        (["--grid", "tau=0.1,0.1"], "repeated"),
        (["--grid", "tau=0.1", "--grid", "tau=0.2"], "--grid tau is given twice"),
        (["--env", "NoSuchEnv-v0", "--grid", "tau=0.1"], "unknown environment"),
        (["--seeds", "2"], "give at least one --grid"),
        (["--grid", "tau=0.1", "--cpus-per-trial", "1000"], "exceeds this machine's"),
        (["--resume", "nowhere"], "not a sweep directory"),
    ],
)
def test_bad_sweep_input_is_one_error_line_and_writes_nothing(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", *args, "--out", "out"] if "--resume" not in args else ["sweep", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cpus_per_trial_beyond_the_cpus_this_process_may_use_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    out = tmp_path / "out"
    assert main(["sweep", "--grid", "tau=0.1", "--cpus-per-trial", "2", "--out", str(out)]) == 2
    assert "exceeds this machine's 1 CPUs" in capsys.readouterr().err
    assert not out.exists()


def test_grid_values_split_at_top_level_commas_only():
    assert split_values("[64,64],[32,32]") == ["[64,64]", "[32,32]"]
    assert split_values("{g: 9.0, m: 1},'a,b'") == ["{g: 9.0, m: 1}", "'a,b'"]


def test_grid_values_parse_like_set_values():
    spec = SweepSpec(grid=parse_grid(["tau=1e-3,0.01", "hidden_sizes=[8,8]"]), seeds=1, overrides=TINY)
    assert [(t.params["tau"], t.config.hidden_sizes) for t in plan(spec)] == [(0.001, [8, 8]), (0.01, [8, 8])]


def test_seeds_follow_the_base_seed():
    spec = SweepSpec(grid=parse_grid(["tau=0.01"]), seeds=3, overrides=[*TINY, "seed=10"])
    assert [t.config.seed for t in plan(spec)] == [10, 11, 12]


def test_spec_round_trips_through_yaml(tmp_path):
    spec = SweepSpec(grid=parse_grid(["tau=0.01,0.02"]), seeds=2, env="Pendulum-v1", overrides=TINY)
    spec.save(tmp_path / "sweep.yaml")
    assert SweepSpec.load(tmp_path / "sweep.yaml") == spec


def test_grid_point_errors_name_the_point():
    spec = SweepSpec(grid=parse_grid(["batch_size=16,10000"]), seeds=1, overrides=[*TINY, "buffer_size=100"])
    with pytest.raises(ConfigError, match="grid point batch_size=10000"):
        plan(spec)


def test_failed_trial_leaves_its_error_in_the_run_directory(tmp_path):
    spec = SweepSpec(grid=parse_grid(["env={bogus: 1}"]), seeds=1, overrides=TINY)
    (trial,) = plan(spec)
    result = run_trial(trial.config.to_dict(), str(tmp_path / "run"))
    assert result["status"] == "error" and "bogus" in result["error"]
    assert "bogus" in (tmp_path / "run" / "error.txt").read_text().splitlines()[0]
    assert not (tmp_path / "run" / "summary.json").exists()
    json.dumps(result)  # what a worker reports must be plain data


def test_a_sweep_directory_given_to_plot_is_compared_by_its_grid_keys(swept, tmp_path, capsys):
    out = tmp_path / "again.png"
    assert main(["plot", str(swept["dir"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert table_rows(printed) == table_rows((swept["dir"] / "summary.md").read_text())
