"""TensorBoard events beside the CSVs, and periodic evaluation videos."""

import csv
import sys

import pytest

from ddpg import DDPG, Config
from ddpg.config import ConfigError
from ddpg.run.logs import TensorBoardLog

SMALL = dict(
    hidden_sizes=[16, 16],
    batch_size=16,
    learning_starts=50,
    max_episode_steps=50,
    eval_every=100,
    eval_episodes=1,
    log_every=25,
    progress=False,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pytest.importorskip("tensorboard")
    root = tmp_path_factory.mktemp("logged") / "run"
    DDPG(config=Config(**SMALL, video=True, video_every=2)).learn(500, run_dir=root)
    return root


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_tensorboard_eval_scalars_equal_eval_csv(run):
    with open(run / "eval.csv", newline="") as f:
        rows = [(int(r["step"]), float(r["mean_return"])) for r in csv.DictReader(f)]
    logged = scalars(run, "eval/mean_return")
    assert [s for s, _ in logged] == [s for s, _ in rows]
    assert [v for _, v in logged] == pytest.approx([v for _, v in rows], rel=1e-6)


def test_tensorboard_mirrors_every_update_row(run):
    with open(run / "updates.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert [s for s, _ in scalars(run, "train/critic_loss")] == steps


def test_tensorboard_off_writes_no_events(tmp_path):
    DDPG(config=Config(**SMALL, video=False, tensorboard=False)).learn(100, run_dir=tmp_path)
    assert not list(tmp_path.glob("events.out.tfevents.*"))


def test_missing_tensorboard_package_is_silent(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert TensorBoardLog.open(tmp_path, {}) is None


def test_video_every_records_every_nth_evaluation_and_the_final_one(run):
    assert sorted(p.name for p in (run / "videos").iterdir()) == ["final.mp4", "step_200.mp4", "step_400.mp4"]


def test_negative_video_every_is_refused():
    with pytest.raises(ConfigError, match="video_every"):
        Config(video_every=-1)


def test_resumed_run_hides_the_tensorboard_events_its_csvs_dropped(tmp_path):
    pytest.importorskip("tensorboard")
    from ddpg.files import point_link

    run = tmp_path / "run"
    config = Config(**SMALL, video=False, checkpoint_every=100, keep_checkpoints=3)
    DDPG(config=config).learn(250, run_dir=run)  # as if killed at 250: logs run past the step-200 checkpoint
    point_link(run / "checkpoints" / "latest", "step_000000200")
    DDPG.resume(run, total_steps=300).learn(run_dir=run)
    with open(run / "updates.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert [s for s, _ in scalars(run, "train/critic_loss")] == steps  # 225 and 250 once each


def test_progress_off_a_terminal_is_one_plain_line_per_evaluation(tmp_path, capsys):
    from ddpg.cli import main

    args = ["train", "--steps", "300", "--run-dir", str(tmp_path / "run"), "--set", "hidden_sizes=[8,8]"]
    args += ["learning_starts=50", "batch_size=8", "eval_every=100", "eval_episodes=1", "video=false"]
    assert main(args) == 0  # the default progress: true, and capsys's stdout is no terminal
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 100/300", "step 200/300", "step 300/300"]
    assert "\x1b" not in out and "eval " in lines[0]


def test_a_video_for_a_notebook_is_shown_inline(tmp_path):
    from ddpg import DDPG, Config

    with DDPG("Pendulum-v1", Config(hidden_sizes=[8, 8], progress=False, video=False)) as agent:
        video = agent.video(str(tmp_path / "policy.mp4"))
    html = video._repr_html_()
    assert html.startswith("<video") and "data:video/mp4;base64," in html
    assert (tmp_path / "policy.mp4").stat().st_size > 0
