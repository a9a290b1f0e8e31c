import csv
import json

import numpy as np
import pytest

from ddpg import DDPG, Config
from ddpg.config import resolve
from ddpg.envs import EnvError
from ddpg.run.agent import TrainingDiverged
from ddpg.run.checkpoint import CheckpointError, write_manifest

SMALL = dict(
    env_id="Pendulum-v1",
    hidden_sizes=[32, 32],
    batch_size=32,
    learning_starts=200,
    eval_every=500,
    eval_episodes=2,
    log_every=50,
    progress=False,
    video=False,
)


def rows(path, drop=("wall_time",)):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(f)]


def test_same_seed_gives_identical_logs(tmp_path):
    for name in ("a", "b"):
        DDPG(config=Config(**SMALL, seed=3)).learn(1000, run_dir=tmp_path / name)
    for log in ("metrics.csv", "updates.csv", "eval.csv"):
        assert rows(tmp_path / "a" / log) == rows(tmp_path / "b" / log), log
    assert len(rows(tmp_path / "a" / "updates.csv")) == (1000 - 200 + 1) // 50  # updates from step 200 on


def test_different_seeds_give_different_runs(tmp_path):
    for seed in (1, 2):
        DDPG(config=Config(**SMALL, seed=seed)).learn(400, run_dir=tmp_path / str(seed))
    assert rows(tmp_path / "1" / "metrics.csv") != rows(tmp_path / "2" / "metrics.csv")


def test_run_directory_holds_the_contract_files(tmp_path):
    run = tmp_path / "run"
    config = Config(**{**SMALL, "video": True})
    summary = DDPG(config=config).learn(600, run_dir=run)
    for name in (
        "config.yaml",
        "metrics.csv",
        "updates.csv",
        "eval.csv",
        "summary.json",
        "plots/training.png",
        "videos/final.mp4",
        "checkpoints/latest/model.safetensors",
        "checkpoints/latest/meta.json",
    ):
        assert (run / name).is_file(), name
    assert next(csv.reader(open(run / "metrics.csv"))) == ["step", "episode", "return", "length", "wall_time"]
    assert next(csv.reader(open(run / "updates.csv"))) == [
        "step",
        "critic_loss",
        "actor_loss",
        "td_error",
        "q_mean",
    ]
    assert [r["step"] for r in rows(run / "eval.csv")] == ["500", "600"]
    saved = json.loads((run / "summary.json").read_text())
    assert saved == summary
    for key in (
        "env_id",
        "seed",
        "total_steps",
        "final_eval_mean_return",
        "final_eval_std_return",
        "train_steps_per_second",
        "wall_time_s",
    ):
        assert key in saved
    assert saved["total_steps"] == 600 and saved["episodes"] == 3  # Pendulum episodes are 200 steps
    evals = [(float(r["mean_return"]), int(r["step"])) for r in rows(run / "eval.csv")]
    best, step = max(evals)
    assert (saved["best_eval_mean_return"], saved["best_eval_step"]) == (best, step)
    assert (run / "checkpoints" / "best").resolve().name == f"best_step_{step:09d}"


def test_no_updates_before_learning_starts(tmp_path):
    agent = DDPG(config=Config(**{**SMALL, "learning_starts": 300}))
    agent.learn(299)
    assert agent.updates == 0
    agent.learn(310)
    assert agent.updates == 11


def test_train_freq_and_gradient_steps_set_the_update_cadence():
    agent = DDPG(config=Config(**{**SMALL, "learning_starts": 100, "train_freq": 4, "gradient_steps": 3}))
    agent.learn(300)
    assert agent.updates == 3 * (300 // 4 - 100 // 4 + 1)


@pytest.mark.parametrize("options", [{}, {"layer_norm": True}], ids=["plain", "layer_norm"])
def test_saved_agent_acts_identically_after_load(tmp_path, options):
    agent = DDPG(config=Config(**SMALL, **options))
    agent.learn(400)
    agent.save(tmp_path / "ckpt")
    loaded = DDPG.load(tmp_path / "ckpt")
    obs = np.array([0.3, -0.2, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    assert loaded.step == 400 and loaded.updates == agent.updates
    assert loaded.learner.actor_opt.state_dict()["state"][0]["exp_avg"].abs().sum() > 0


def test_load_refuses_a_checkpoint_for_other_shapes(tmp_path):
    DDPG(config=Config(**SMALL)).save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"observation shape \(3,\).*\(2,\)"):
        DDPG.load(
            tmp_path / "ckpt", env=DDPG(config=Config(**{**SMALL, "env_id": "MountainCarContinuous-v0"})).env
        )


def test_user_environment_class_by_module_path():
    agent = DDPG(
        config=Config(
            **{
                **SMALL,
                "env_id": "tests.helpers:CountingEnv",
                "max_episode_steps": 20,
                "eval_episodes": 1,
                "env": {"terminate_at": 50},
            }
        )
    )
    summary = agent.learn(250)
    assert summary["episodes"] == 12  # truncated every 20 steps by max_episode_steps


def test_discrete_action_space_is_refused():
    with pytest.raises(EnvError, match="Discrete action space"):
        DDPG("CartPole-v1", Config(progress=False))


def test_non_finite_reward_stops_training_naming_the_step():
    agent = DDPG(config=Config(**{**SMALL, "env_id": "tests.helpers:NaNEnv"}))
    with pytest.raises(TrainingDiverged, match="step 5"):
        agent.learn(100)


def test_pendulum_preset_learns_within_6000_steps(tmp_path):
    config = resolve(env_id="Pendulum-v1", seed=0, overrides=["progress=false", "video=false"])
    summary = DDPG(config=config).learn(6000, run_dir=tmp_path / "run")
    assert summary["final_eval_mean_return"] >= -400


def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    config = Config(
        **{
            **SMALL,
            "env_id": "tests.helpers:HugeRewardEnv",
            "learning_starts": 40,
            "log_every": 1,
            "checkpoint_every": 20,
            "max_episode_steps": 50,
        }
    )
    with pytest.raises(TrainingDiverged, match="non-finite loss at step 40"):
        DDPG(config=config).learn(100, run_dir=tmp_path / "run")
    good = DDPG.load(tmp_path / "run", env=config.env_id)  # the step-40 checkpoint was never written over
    assert good.step == 20


@pytest.mark.parametrize("n_envs", [1, 4])
def test_several_envs_keep_the_steps_updates_and_evaluations_of_one(tmp_path, n_envs):
    # Counts are in transitions: 4 envs make 75 loop steps of 4, with the same updates and evaluations.
    config = Config(
        **{**SMALL, "learning_starts": 100, "train_freq": 4, "gradient_steps": 3, "eval_every": 100},
        n_envs=n_envs,
        vectorization="sync",
        max_episode_steps=50,
    )
    agent = DDPG(config=config)
    agent.learn(300, run_dir=tmp_path / "run")
    assert agent.step == 300 and len(agent.buffer) == 300
    assert agent.updates == 3 * (300 // 4 - 100 // 4 + 1)
    assert [r["step"] for r in rows(tmp_path / "run" / "eval.csv")] == ["100", "200", "300"]
    episodes = n_envs * (300 // n_envs // 50)  # each env's own 50-step episodes, all logged
    assert len(rows(tmp_path / "run" / "metrics.csv")) == episodes
    agent.close()


def test_several_envs_need_a_total_that_is_a_multiple_of_n_envs():
    with pytest.raises(ValueError, match=r"total_steps .* multiple of n_envs"):
        Config(**SMALL, n_envs=3, total_steps=100)


def test_several_envs_are_refused_with_an_env_that_cannot_be_remade():
    from tests.helpers import CountingEnv

    with pytest.raises(EnvError, match="made again"):
        DDPG(CountingEnv(), Config(**SMALL, n_envs=2, total_steps=100))


@pytest.mark.parametrize(
    ("env_id", "algo"), [("BipedalWalker-v3", "td3"), ("Hopper-v5", "td3"), ("Hopper-v5", "ddpg")]
)
def test_box2d_and_mujoco_presets_train_and_evaluate(env_id, algo):
    # The presets' own networks and batch (256), cut to a few hundred steps.
    overrides = ["learning_starts=100", "eval_every=300", "eval_episodes=1", "progress=false", "video=false"]
    config = resolve(env_id=env_id, algo=algo, total_steps=300, overrides=overrides)
    summary = DDPG(config=config).learn()
    assert summary["updates"] > 0 and np.isfinite(summary["final_eval_mean_return"])


@pytest.mark.parametrize("inflate", [0.0, 1e4])
def test_a_critic_above_any_possible_return_is_warned_about_once_and_remembered(tmp_path, inflate):
    # Pendulum's rewards are at most 0 (about −16.3 at worst): no mean Q above 0.1 · 16.3 / (1 − γ) ≈ 163
    # is a return. The update's reported mean Q is shifted by `inflate`; an honest critic is never flagged.
    import warnings

    from ddpg.run.agent import OverestimationWarning

    agent = DDPG(config=Config(**{**SMALL, "log_every": 10}, compile=False))
    update = agent.learner.update

    def reported(batch):
        stats = update(batch)
        return {**stats, "q_mean": stats["q_mean"] + inflate}

    agent.learner.update = reported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.learn(600, run_dir=tmp_path / "run")
    flagged = [w for w in caught if issubclass(w.category, OverestimationWarning)]
    assert len(flagged) == (1 if inflate else 0)
    assert -16.5 < agent.state.reward_max <= 0 and 10 < agent.state.reward_scale < 16.5
    if inflate:
        # The first row of updates.csv: the 10th update, at step 209 (updates start at step 200).
        assert "step 209: the critic overestimates: mean Q(s, a) = 1e+04" in str(flagged[0].message)
    resumed = DDPG.resume(tmp_path / "run", total_steps=700)
    assert (resumed.state.reward_max, resumed.state.reward_scale) == (
        agent.state.reward_max,
        agent.state.reward_scale,
    )
    assert resumed.state.overestimation_warned == bool(inflate)  # not again after a resume
    # A checkpoint from before the warning existed: the range comes from the rewards in its buffer.
    resumed.close()  # one agent writes a run directory at a time
    meta_file = tmp_path / "run" / "checkpoints" / "latest" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["training"]["rewards"]
    meta_file.write_text(json.dumps(meta))
    write_manifest(meta_file.parent)
    older = DDPG.resume(tmp_path / "run", total_steps=700)
    assert older.state.reward_max == pytest.approx(agent.state.reward_max, abs=1e-5)  # stored as float32
    assert older.state.reward_scale == pytest.approx(agent.state.reward_scale, abs=1e-5)
