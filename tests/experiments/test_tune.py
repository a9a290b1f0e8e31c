"""`ddpg tune`: the space's checks, a trial's lockstep reports, and a 4-trial × 2-seed × 1500-step tune on
Pendulum through the embedded Ray, killed with SIGKILL after its first trial and finished by the same
command. That tune takes 110-150 s on 2 loaded cores, so its tests are `slow`; bench/tune_resume.py runs
the same scenario with its checks."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import trim_mean

from ddpg.cli import main
from ddpg.config import ConfigError, load_yaml
from ddpg.experiments import compare
from ddpg.experiments.sweep import SweepError
from ddpg.experiments.tune import (
    TunedTrial,
    TuneError,
    TuneSpec,
    _importances,
    parse_distribution,
    parse_space,
    prepare,
    read_trial,
    train_trial,
)


def iqm(values) -> float:
    """The interquartile mean computed independently of the library: scipy's quarter-trimmed mean."""
    return float(trim_mean(list(values), 0.25))


pytest.importorskip("ray.tune")
pytest.importorskip("optuna")

TINY = [
    "batch_size=32",
    "learning_starts=200",
    "eval_every=250",
    "eval_episodes=1",
    "log_every=100",
    "video=false",
    "tensorboard=false",
]
SPACE = ["actor_lr=loguniform(1e-4,1e-2)", "hidden_sizes=choice([8,8],[16,16])"]
TRIALS, SEEDS, STEPS = 4, 2, 1500


def tune_args(out: Path) -> list[str]:
    return [
        "tune",
        "--env",
        "Pendulum-v1",
        "--space",
        *SPACE,
        "--trials",
        str(TRIALS),
        "--seeds",
        str(SEEDS),
        "--steps",
        str(STEPS),
        "--out",
        str(out),
        "--set",
        *TINY,
    ]


def summary_rows(directory: Path) -> list[list[str]]:
    lines = (directory / "summary.md").read_text().splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")][1:]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The tune started in its own process, killed with SIGKILL (its whole process group: the embedded
    Ray's processes too) once its first trial has ended, and finished by the same command here."""
    root = tmp_path_factory.mktemp("tune")
    home = root / "home"
    home.mkdir()
    out = root / "out"
    env = {**os.environ, "HOME": str(home), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "ddpg", *tune_args(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        assert first.stdout is not None
        for line in first.stdout:
            lines.append(line)
            if line.startswith("[1/"):
                # Tune records a trial's end in its experiment state within a step of its loop (0.1 s)
                # after the callback that printed the line: the kill comes after that.
                time.sleep(3)
                break
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert any(line.startswith("[1/") for line in lines), "".join(lines)
    # What a kill leaves: the killed embedded Ray's directory in the system temp dir (named by its driver).
    for session in Path(tempfile.gettempdir()).glob(f"ddpg-ray-*/session_*_{first.pid}"):
        shutil.rmtree(session.parent, ignore_errors=True)
    ended = lines[-1].split()[1]  # the trial that ended before the kill
    seed_dir = out / "runs" / ended / "seed_0"
    before = (seed_dir / "eval.csv").read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        code = main(tune_args(out))
    return {"out": out, "code": code, "ended": ended, "before": before, "home": home}


@pytest.mark.slow
def test_a_killed_tune_finishes_with_the_same_command(tuned):
    assert tuned["code"] == 0
    rows = summary_rows(tuned["out"])
    assert len(rows) == TRIALS
    assert sorted(r[1] for r in rows) == [f"trial_{i:03d}" for i in range(1, TRIALS + 1)]
    assert {r[-1] for r in rows} <= {"complete", "stopped"}, rows
    assert rows[0][-1] == "complete"


@pytest.mark.slow
def test_a_trial_that_ended_before_the_kill_is_not_run_again(tuned):
    seed_dir = tuned["out"] / "runs" / tuned["ended"] / "seed_0"
    assert (seed_dir / "eval.csv").read_bytes() == tuned["before"]


@pytest.mark.slow
def test_each_trial_is_one_run_directory_per_seed_with_its_values(tuned):
    for trial in sorted((tuned["out"] / "runs").iterdir()):
        values = yaml.safe_load((trial / "params.yaml").read_text())
        assert set(values) == {"actor_lr", "hidden_sizes"}
        assert sorted(p.name for p in trial.glob("seed_*")) == ["seed_0", "seed_1"]
        for seed, run_dir in enumerate(sorted(trial.glob("seed_*"))):
            config = load_yaml(run_dir / "config.yaml")
            assert config["loop"]["seed"] == seed
            assert config["optimisation"]["actor_lr"] == pytest.approx(values["actor_lr"])
            assert config["networks"]["hidden_sizes"] == yaml.safe_load(values["hidden_sizes"])


@pytest.mark.slow
def test_the_ranking_is_the_iqm_of_the_seeds_evaluations_recomputed_from_the_run_directories(tuned):
    rows = summary_rows(tuned["out"])
    complete = [r for r in rows if r[-1] == "complete"]
    for row in rows:
        runs = [compare.load_run(p) for p in sorted((tuned["out"] / "runs" / row[1]).glob("seed_*"))]
        step = int(row[-2])
        returns = [float(r.eval_returns[list(r.eval_steps).index(step)]) for r in runs]
        assert float(row[4]) == pytest.approx(iqm(returns), abs=0.01)
        assert (step == STEPS) == (row[-1] == "complete")
    scores = [float(r[4]) for r in complete]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_best_yaml_is_the_best_trial_and_a_preset_train_accepts(tuned, tmp_path, capsys):
    best = tuned["out"] / "best.yaml"
    config = load_yaml(best)
    winner = summary_rows(tuned["out"])[0]
    assert config["optimisation"]["actor_lr"] == pytest.approx(float(winner[2]), rel=1e-3)
    assert config["networks"]["hidden_sizes"] == yaml.safe_load(winner[3])
    assert config["logging"]["progress"] is True  # the user's setting, not the trials' quiet one
    run_dir = tmp_path / "run"
    assert main(["train", "--preset", str(best), "--steps", "40", "--run-dir", str(run_dir)]) == 0
    assert (
        load_yaml(run_dir / "config.yaml")["networks"]["hidden_sizes"] == config["networks"]["hidden_sizes"]
    )


@pytest.mark.slow
def test_tune_writes_the_history_and_importance_figures(tuned):
    text = (tuned["out"] / "summary.md").read_text()
    for name in ("history.png", "importance.png"):
        assert (tuned["out"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text


@pytest.mark.slow
def test_tune_leaves_no_ray_files_in_the_home_directory(tuned):
    assert not (tuned["home"] / "ray_results").exists()
    assert not (tuned["home"] / ".ray").exists()


@pytest.mark.slow
def test_the_same_command_on_a_finished_tune_only_rewrites_its_reports(tuned, capsys):
    assert main(tune_args(tuned["out"])) == 0
    assert "4 trials (0 run now" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# A trial without Ray


def test_a_trial_reports_the_iqm_of_its_seeds_at_each_evaluation_step(tmp_path):
    spec = TuneSpec(space=SPACE, seeds=3, env="Pendulum-v1", steps=500, overrides=TINY)
    base = spec.base_config().replace(progress=False)
    job = {"base": base.to_dict(), "space": SPACE, "seeds": [0, 1, 2], "threads": 1, "total": 500}
    reports: list[dict] = []
    train_trial(job, {"actor_lr": 1e-3, "hidden_sizes": "[8,8]"}, tmp_path / "trial", reports.append)
    assert [r["step"] for r in reports] == [250, 500]
    runs = [compare.load_run(tmp_path / "trial" / f"seed_{s}") for s in range(3)]
    for i, report in enumerate(reports):
        returns = np.array([r.eval_returns[i] for r in runs])
        assert report["iqm"] == pytest.approx(iqm(returns))
    assert all((r.path / "summary.json").is_file() for r in runs)  # ordinary, finished run directories
    assert len({tuple(r.eval_returns) for r in runs}) == 3  # three seeds, three different runs
    trial = read_trial(tmp_path / "trial", 500)
    assert (trial.status, trial.step, trial.score) == ("complete", 500, pytest.approx(reports[-1]["iqm"]))

    # A trial ASHA stopped after its first report, whose seeds ran on before their process ended, counts
    # with what it reported; one still in flight when the tune stopped is unfinished.
    (tmp_path / "trial" / "reported.txt").write_text("250\n")
    stopped = read_trial(tmp_path / "trial", 500)
    assert (stopped.status, stopped.step, stopped.score) == ("stopped", 250, pytest.approx(reports[0]["iqm"]))
    assert read_trial(tmp_path / "trial", 500, ended=False).status == "unfinished"


def test_iqm_trims_a_quarter_at_each_end():
    assert iqm([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    assert iqm([-5.0, 7.0]) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------
# The space


def test_distributions_parse_with_bounds_and_choices_as_typed():
    lr, hidden, layers = parse_space(
        ["actor_lr=loguniform(1e-4, 1e-2)", "hidden_sizes=choice([64,64],[256,256])", "n_step=int(1,5)"]
    )
    assert (lr.kind, lr.low, lr.high) == ("loguniform", 1e-4, 1e-2)
    assert hidden.options == ("[64,64]", "[256,256]")
    assert (layers.kind, layers.low, layers.high) == ("int", 1, 5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("tau", "--space expects KEY=DIST"),
        ("tau=normal(0,1)", "expected one of loguniform(…), uniform(…), int(…), choice(…)"),
        ("tau=uniform(0.1)", "uniform takes two bounds"),
        ("tau=uniform(0.2,0.1)", "low < high"),
        ("tau=uniform(a,b)", "bounds must be numbers"),
        ("n_step=int(1.5,3)", "bounds must be integers"),
        ("actor_lr=loguniform(0,1)", "loguniform's bounds must be > 0"),
        ("tau=choice(0.1)", "two or more different options"),
        ("hidden_sizes=choice([64,64],[64, 64])", "two or more different options"),
        ("tau=choice(0.1,1e-1)", "two or more different options"),
        ("seed=int(0,3)", "use --seeds K"),
        ("total_steps=int(1000,2000)", "use --steps S"),
    ],
)
def test_malformed_distributions_are_refused_by_name(text, message):
    with pytest.raises(ConfigError, match="--space") as error:
        parse_distribution(text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "space, message",
    [
        ("taux=uniform(0.001,0.1)", "unknown config key 'taux' (did you mean: tau?)"),
        ("tau=uniform(0.5,2)", "tau must be in (0, 1]"),
        ("batch_size=uniform(16,256)", "batch_size must be an integer"),
        ("hidden_sizes=choice([64,64],[0])", "hidden_sizes must be a non-empty list of positive sizes"),
        ("noise.sigma=uniform(-1,1)", "noise.sigma must be >= 0"),
    ],
)
def test_bad_tune_input_is_one_error_line_and_writes_nothing(space, message, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["tune", "--env", "Pendulum-v1", "--space", space, "--trials", "2", "--out", str(out)])
    err = capsys.readouterr()
    assert code == 2
    assert err.err.count("\n") == 1 and err.err.startswith("error: --space ")
    assert message in err.err
    assert err.out == ""
    assert not out.exists()


def test_a_directory_holding_another_tune_is_refused(tmp_path):
    spec = TuneSpec(space=SPACE, trials=2, env="Pendulum-v1", overrides=TINY)
    tmp_path.joinpath("tune.yaml").write_text(yaml.safe_dump({**spec.__dict__, "trials": 3}))
    with pytest.raises(TuneError, match="holds another tune"):
        prepare(spec, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(TuneError, match="not a tune directory"):
        prepare(spec, other)


def test_actors_are_refused_in_one_line(tmp_path):
    spec = TuneSpec(space=SPACE, trials=2, env="Pendulum-v1", overrides=[*TINY, "actors=2"])
    with pytest.raises(ConfigError, match=r"^actors is not supported by ddpg tune"):
        prepare(spec, tmp_path / "tune")


def test_a_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="--space tau is given twice"):
        parse_space(["tau=uniform(0.1,0.2)", "tau=uniform(0.2,0.3)"])


def test_spec_round_trips_through_yaml_and_a_damaged_one_is_one_error(tmp_path):
    spec = TuneSpec(space=SPACE, trials=2, seeds=2, env="Pendulum-v1", steps=500, overrides=TINY)
    spec.save(tmp_path / "tune.yaml")
    assert TuneSpec.load(tmp_path / "tune.yaml") == spec
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump({"space": SPACE, "seeds": 2}))  # no trials
    with pytest.raises(TuneError, match=r"tune.yaml is not a tune spec \('trials'\)"):
        TuneSpec.load(tmp_path / "tune.yaml")
    (tmp_path / "tune.yaml").write_text("space: [\n")
    with pytest.raises(SweepError, match=r"tune.yaml is not valid YAML \(expected the node content") as error:
        TuneSpec.load(tmp_path / "tune.yaml")
    assert "\n" not in str(error.value)  # the parser's excerpt of the file is left to the file


def test_importances_leave_optunas_verbosity_as_they_found_it():
    # Optuna's verbosity is process-wide: a program that uses ddpg's tune keeps its own setting.
    import optuna

    before = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.DEBUG)
        trials = [
            TunedTrial(f"trial_{i:03d}", {"actor_lr": lr}, 500, [score], "complete")
            for i, (lr, score) in enumerate([(1e-4, -900.0), (1e-3, -400.0), (3e-3, -300.0), (1e-2, -800.0)])
        ]
        importances = _importances(parse_space(["actor_lr=loguniform(1e-4,1e-2)"]), trials)
        assert set(importances) == {"actor_lr"}
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


def test_a_trial_directory_damaged_by_hand_is_one_error_or_still_read(tmp_path):
    # The reports read every trial after the tune: a hand-edited trial must not end it in a traceback.
    trial = tmp_path / "trial_000"
    trial.mkdir()
    (trial / "params.yaml").write_text("tau: [")
    with pytest.raises(TuneError, match=r"params\.yaml is not valid YAML \(expected"):
        read_trial(trial, 1000)
    (trial / "params.yaml").write_text("3")
    with pytest.raises(TuneError, match=r"params\.yaml is not a mapping"):
        read_trial(trial, 1000)
    (trial / "params.yaml").write_text("tau: 0.1")
    (trial / "seed_notes").mkdir()
    (trial / "seed_0").mkdir()
    (trial / "seed_0" / "error.txt").write_text("")
    read = read_trial(trial, 1000)
    assert (read.values, read.status, read.error) == ({"tau": 0.1}, "failed", "failed")
