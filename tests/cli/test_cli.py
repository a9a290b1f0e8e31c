import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ddpg
from ddpg.cli import main
from tests.helpers import error_line

FAST = [
    "--set",
    "hidden_sizes=[16,16]",
    "batch_size=16",
    "learning_starts=50",
    "eval_every=100",
    "eval_episodes=1",
    "progress=false",
    "video=false",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    assert (
        main(["train", "--env", "Pendulum-v1", "--steps", "200", "--seed", "1", "--run-dir", str(run), *FAST])
        == 0
    )
    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--env", "NoSuchEnv-v9"], "unknown environment 'NoSuchEnv-v9'"),
        (["train", "--env", "CartPole-v1"], "Discrete action space"),
        (["train", "--set", "learning_rate=1"], "unknown config key 'learning_rate'"),
        (["train", "--set", "batch_size=abc"], "batch_size must be an integer"),
        (["train", "--set", "actor_lr=0"], "actor_lr must be > 0"),
        (["train", "--set", "critic_lr=-1"], "critic_lr must be > 0"),
        (["train", "--set", "tau=2"], "tau must be in (0, 1]"),
        (["train", "--set", "gamma=1.5"], "gamma must be in [0, 1]"),
        (["train", "--set", "batch_size=512", "buffer_size=100"], "must not exceed buffer_size"),
        (["train", "--set", "hidden_sizes=[64,"], "not valid YAML"),
        (["train", "--steps", "0"], "positive integer"),
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--env", "tests.helpers:Nope"], "cannot import environment"),
        (["evaluate", "does/not/exist"], "does not exist"),
        (["plot", "does/not/exist"], "not a run directory"),
        (["plot", "run", "--out", "plot.jpg"], "argument --out: must be a .png file, got 'plot.jpg'"),
        (["plot", "run", "--group-by", "tau", "--out", "c.svg"], "argument --out: must be a .png file"),
        (["slotcar", "profile", "run", "--out", "profile"], "argument --out: must be a .png file"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["evaluate"], ["resume"], ["export", "--out", "p.npz"]])
def test_a_file_given_as_the_run_directory_is_said_to_be_one(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("loop: {}\n")
    assert main([command[0], "config.yaml", *command[1:]]) == 2
    assert error_line(capsys) == "error: run directory config.yaml is a file, not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_evaluate_of_a_directory_without_checkpoint_is_refused(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no checkpoint" in error_line(capsys)


def test_train_refuses_to_overwrite_an_existing_run(run_dir, capsys):
    before = sorted(p.name for p in run_dir.iterdir())
    assert main(["train", "--run-dir", str(run_dir), *FAST]) == 2
    assert "already exists" in error_line(capsys)
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_evaluate_json_reports_returns_and_info_means(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--episodes", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"mean_return", "std_return", "episodes", "info_means", "checkpoint", "step"}
    assert out["episodes"] == 2 and out["mean_return"] < 0


def test_evaluate_is_deterministic(run_dir, capsys):
    main(["evaluate", str(run_dir), "--episodes", "1", "--seed", "5", "--json"])
    main(["evaluate", str(run_dir), "--episodes", "1", "--seed", "5", "--json"])
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == second


def test_evaluate_writes_a_gif(run_dir, tmp_path, capsys):
    import imageio.v3 as iio

    out = tmp_path / "ep.gif"
    assert main(["evaluate", str(run_dir), "--episodes", "1", "--video", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] > 100 and frames.shape[-1] in (3, 4)


def test_plot_overlays_runs(run_dir, tmp_path, capsys):
    out = tmp_path / "both.png"
    assert main(["plot", str(run_dir), str(run_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_envs_lists_presets(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "Pendulum-v1" in out and "paper" in out
    assert "default" in out and "without a preset of its own" in out


def test_console_script_prints_no_traceback_on_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ddpg.cli", "train", "--env", "CartPole-v1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(ddpg.__file__).resolve().parents[1])},  # this ddpg
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_evaluate_video_of_an_env_that_cannot_render_is_one_error_line(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--env", "tests.helpers:NoRenderEnv", "--steps", "60", "--run-dir", str(run), *FAST]
    assert main([*args, "max_episode_steps=20"]) == 0
    capsys.readouterr()
    video = ["--video", str(tmp_path / "v.mp4"), "--env", "tests.helpers:NoRenderEnv"]
    assert main(["evaluate", str(run), *video]) == 2
    assert "cannot render" in error_line(capsys)
    assert not (tmp_path / "v.mp4").exists()


def test_plot_group_by_over_a_damaged_config_is_one_error_line(run_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken, symlinks=True)
    (broken / "config.yaml").write_text("tau: [0.1,\n")
    assert main(["plot", str(broken), "--group-by", "tau", "--out", str(tmp_path / "c.png")]) == 2
    assert "not valid YAML" in error_line(capsys)


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "--env", "Pendulum-v1", "--steps", "300", "--seed", "2", "--run-dir", str(run), *FAST]
    assert main([*args, "checkpoint_every=100", "keep_checkpoints=3"]) == 0
    return run


def _evaluate_json(capsys, *args):
    capsys.readouterr()
    assert main(["evaluate", *args, "--episodes", "1", "--seed", "3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_checkpoint_picks_the_named_checkpoint(checkpointed_run, capsys):
    from ddpg.run.agent import DDPG

    run = str(checkpointed_run)
    first = _evaluate_json(capsys, run, "--checkpoint", "step_000000100")
    latest = _evaluate_json(capsys, run, "--checkpoint", "latest")
    assert (first["checkpoint"], first["step"]) == ("checkpoints/step_000000100", 100)
    assert (latest["checkpoint"], latest["step"]) == ("checkpoints/latest", 300)
    assert _evaluate_json(capsys, run, "--checkpoint", "step_100") == first  # as videos/step_100.mp4
    assert first["mean_return"] != latest["mean_return"]  # 200 more updates changed the policy
    best = _evaluate_json(capsys, run, "--checkpoint", "best")
    agent = DDPG.load(checkpointed_run / "checkpoints" / "best")
    assert best["mean_return"] == pytest.approx(agent.evaluate(1, 3).mean_return)
    # What a run ships, and evaluate runs unless told otherwise: its best evaluation's policy.
    assert _evaluate_json(capsys, run) == best == _evaluate_json(capsys, run, "--checkpoint", "shipped")
    assert best["checkpoint"] == "checkpoints/best"


@pytest.mark.parametrize("name", ["step_000000999", "step_999", "../checkpoints/latest", "nope"])
def test_evaluate_of_a_checkpoint_not_kept_lists_the_kept_ones(checkpointed_run, capsys, name):
    assert main(["evaluate", str(checkpointed_run), "--checkpoint", name]) == 2
    line = error_line(capsys)
    assert f"no checkpoint {name!r}" in line and "step_000000300" in line and "best" in line


@pytest.mark.parametrize("command", ["train", "resume"])
def test_train_and_resume_shut_their_env_subprocesses_down(tmp_path, command):
    # Left to the interpreter's exit, the workers found their pipes closed and printed tracebacks.
    import multiprocessing

    run = tmp_path / "run"
    args = ["--env", "Pendulum-v1", "--steps", "100", "--run-dir", str(run), *FAST, "n_envs=2"]
    assert main(["train", *args]) == 0
    if command == "resume":
        assert main(["resume", str(run), "--steps", "200"]) == 0
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(("final", "best", "shown"), [(101.5, 3394.0, True), (3394.0, 3394.0, False)])
def test_train_points_to_the_best_checkpoint_when_the_final_policy_is_worse(
    monkeypatch, tmp_path, capsys, final, best, shown
):
    from ddpg import DDPG

    summary = {
        "final_eval_mean_return": final,
        "final_eval_std_return": 52.7,
        "best_eval_mean_return": best,
        "best_eval_step": 930000,
        "train_steps_per_second": 331.0,
    }
    monkeypatch.setattr(DDPG, "learn", lambda self, total_steps=None, run_dir=None, **_: summary)
    run = tmp_path / "run"
    assert main(["train", "--env", "Pendulum-v1", "--run-dir", str(run), *FAST]) == 0
    line = (
        "shipped: the best evaluation's policy, 3394.0 at step 930000 (checkpoints/best; "
        f"ddpg evaluate {run} --checkpoint latest runs the final one)"
    )
    assert (line in capsys.readouterr().out) == shown


def test_evaluate_runs_the_policy_on_a_variant_of_its_env(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "legacy_state_run", run, symlinks=True)
    means = {}
    for variant in ([], ["--set", "env.g=3.0"]):
        assert main(["evaluate", str(run), "--episodes", "2", "--json", *variant]) == 0
        means[bool(variant)] = json.loads(capsys.readouterr().out)["mean_return"]
    assert means[False] != means[True]  # another gravity, other returns
    assert main(["evaluate", str(run), "--set", "env.no_such_argument=1"]) == 2
    assert "no_such_argument" in error_line(capsys)
    assert main(["evaluate", str(run), "--set", "tau=0.1"]) == 2
    assert "--set expects env.KEY=VALUE" in error_line(capsys)
