import json

import numpy as np
import pytest
import torch
import yaml

from ddpg import DDPG
from ddpg.agent.networks import CriticEnsemble
from ddpg.cli import main
from ddpg.config import Config, ConfigError, from_dict, resolve
from ddpg.data.frames import FrameReplayBuffer
from ddpg.data.prioritized import PrioritizedReplayBuffer


def test_td3_fills_the_td3_paper_defaults():
    c = Config(algo="td3")
    assert (c.twin_critics, c.target_policy_noise, c.target_noise_clip, c.policy_delay) == (True, 0.2, 0.5, 2)


def test_ddpg_defaults_leave_every_td3_piece_off():
    c = Config()
    assert (c.twin_critics, c.target_policy_noise, c.policy_delay) == (False, 0.0, 1)
    assert (c.prioritized, c.n_step) == (False, 1)


def test_an_explicit_switch_wins_over_the_algorithm_default():
    c = resolve(overrides=["algo=td3", "policy_delay=1", "twin_critics=false"])
    assert (c.algo, c.twin_critics, c.target_policy_noise, c.policy_delay) == ("td3", False, 0.2, 1)


def test_td3_pieces_can_be_switched_on_for_ddpg():
    c = resolve(overrides=["twin_critics=true"])
    assert (c.algo, c.twin_critics, c.policy_delay) == ("ddpg", True, 1)


def test_replacing_the_algorithm_brings_its_defaults():
    assert Config().replace(algo="td3").policy_delay == 2
    assert Config(algo="td3").replace(algo="ddpg").twin_critics is False


def test_a_saved_td3_config_loads_unchanged():
    c = Config(algo="td3", policy_delay=3)
    assert from_dict(yaml.safe_load(yaml.safe_dump(c.to_dict()))) == c


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"algo": "sac"}, "algo must be one of ddpg, td3"),
        ({"policy_delay": 0}, "policy_delay must be >= 1"),
        ({"target_policy_noise": -0.1}, "target_policy_noise must be >= 0"),
        ({"target_noise_clip": 0}, "target_noise_clip must be > 0"),
        ({"twin_critics": "yes"}, "twin_critics must be true or false"),
        ({"per_alpha": -1}, "per_alpha must be >= 0"),
        ({"per_beta0": 1.5}, "per_beta0 must be in"),
        ({"per_eps": 0}, "per_eps must be > 0"),
        ({"n_step": 0}, "n_step must be >= 1"),
        ({"prioritized": 1}, "prioritized must be true or false"),
    ],
)
def test_bad_algorithm_settings_are_refused_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


def test_cli_algo_flag_selects_td3_and_a_bad_one_is_one_error_line(tmp_path, capsys):
    assert main(["train", "--algo", "sac", "--run-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--algo" in err[0]
    assert not (tmp_path / "x").exists()


def test_td3_with_prioritized_n_step_replay_trains_saves_and_loads(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--env", "Pendulum-v1", "--algo", "td3", "--steps", "300", "--run-dir", str(run)]
    fast = ["hidden_sizes=[16,16]", "batch_size=16", "learning_starts=100", "eval_every=300"]
    fast += ["eval_episodes=1", "progress=false", "video=false", "log_every=20"]
    assert main([*args, "--set", "prioritized=true", "n_step=3", *fast]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    algorithm, replay = saved["algorithm"], saved["replay"]  # config.yaml is nested by section
    chosen = (algorithm["algo"], algorithm["twin_critics"], replay["prioritized"], replay["n_step"])
    assert chosen == ("td3", True, True, 3)
    assert json.loads((run / "summary.json").read_text())["updates"] == 201
    agent = DDPG.load(run)
    assert isinstance(agent.learner.critic, CriticEnsemble)
    assert isinstance(agent.buffer, PrioritizedReplayBuffer)
    assert agent.learner.critic_updates == 201


def test_training_with_prioritized_replay_moves_priorities_off_the_initial_maximum():
    config = Config(
        hidden_sizes=[16, 16], batch_size=16, learning_starts=50, eval_episodes=0, progress=False
    ).replace(prioritized=True, buffer_size=1000)
    agent = DDPG(config=config)
    agent.learn(150)
    priorities = agent.buffer.tree.get(range(150))
    assert len(set(priorities.tolist())) > 100  # replayed transitions carry their own |TD error|


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("prioritized", [False, True])
@pytest.mark.parametrize("algo", ["ddpg", "td3"])
@pytest.mark.parametrize("env_id", ["tests.helpers:CountingEnv", "tests.helpers:PixelEnv"])
def test_every_combination_trains_on_states_and_pixels_and_reloads(
    tmp_path, env_id, algo, prioritized, n_step
):
    pixels = env_id.endswith("PixelEnv")
    config = Config(
        env_id=env_id,
        algo=algo,
        prioritized=prioritized,
        n_step=n_step,
        hidden_sizes=[8, 8],
        conv_channels=[4],
        conv_strides=[2],
        batch_size=8,
        buffer_size=64,
        learning_starts=20,
        max_episode_steps=15,
        eval_episodes=1,
        eval_every=10_000,
        progress=False,
        video=False,
    )
    agent = DDPG(config=config)
    before = [p.detach().clone() for p in agent.learner.actor.parameters()]
    summary = agent.learn(60, run_dir=tmp_path / "run")
    assert agent.updates == 41 and np.isfinite(summary["final_eval_mean_return"])
    assert summary["update_path"] == ("eager" if pixels else "manual")  # the fast path covers every state run
    # The actor moved (under TD3 every second update); every weight is still finite.
    after = list(agent.learner.actor.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert all(torch.isfinite(p).all() for p in agent.learner.critic.parameters())
    assert isinstance(agent.learner.critic, CriticEnsemble) == (algo == "td3")
    assert isinstance(agent.buffer, PrioritizedReplayBuffer) == prioritized
    frames = agent.buffer.buffer if prioritized else agent.buffer
    assert isinstance(frames, FrameReplayBuffer) == pixels
    batch = agent.buffer.sample(8, np.random.default_rng(0))
    assert batch.obs.dtype == (np.uint8 if pixels else np.float32)
    assert (batch.weight is not None) == prioritized and (batch.discount is not None) == (n_step > 1)
    loaded = DDPG.load(tmp_path / "run", env=env_id)  # a module:Class env is named again
    probe = np.zeros(agent.obs_shape, dtype=np.uint8 if pixels else np.float32)
    np.testing.assert_array_equal(loaded.act(probe), agent.act(probe))


def test_td7_fills_the_td7_paper_defaults_across_sections():
    c = Config(algo="td7")
    switches = (c.twin_critics, c.target_policy_noise, c.target_noise_clip, c.policy_delay)
    assert switches == (True, 0.2, 0.5, 2)
    td7 = (c.sale, c.lap, c.lap_alpha, c.lap_min_priority, c.target_update_every, c.value_clip)
    assert td7 == (True, True, 0.4, 1.0, 250, True)
    assert (c.hidden_sizes, c.critic_activation, c.zs_dim, c.encoder_hidden_sizes) == (
        [256, 256],
        "elu",
        256,
        [256, 256],
    )
    assert (c.actor_lr, c.critic_lr, c.encoder_lr, c.batch_size) == (3e-4, 3e-4, 3e-4, 256)
    assert (c.noise.kind, c.noise.sigma) == ("gaussian", 0.1)


def test_td7_defaults_give_way_to_the_preset_and_the_user():
    c = resolve("MountainCarContinuous-v0", algo="td7", overrides=["critic_lr=1e-3", "sale=false"])
    preset = resolve("MountainCarContinuous-v0")
    assert (c.hidden_sizes, c.actor_lr, c.batch_size) == (
        preset.hidden_sizes,
        preset.actor_lr,
        preset.batch_size,
    )
    assert (c.critic_lr, c.sale, c.lap, c.critic_activation) == (1e-3, False, True, "elu")


def test_replacing_the_algorithm_swaps_td7s_network_defaults_but_keeps_values_given():
    c = Config(algo="td7")
    assert (c.replace(algo="ddpg").hidden_sizes, c.replace(algo="ddpg").actor_lr) == ([400, 300], 1e-4)
    assert Config(hidden_sizes=[64, 64]).replace(algo="td7").hidden_sizes == [64, 64]
    assert Config().replace(algo="td7").critic_activation == "elu"
    assert from_dict(yaml.safe_load(yaml.safe_dump(c.to_dict()))) == c


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"algo": "td3", "lap": True}, "lap is a switch of td7's update"),
        ({"sale": True}, "sale is a switch of td7's update"),
        ({"algo": "td3", "target_update_every": 250}, "target_update_every is a switch of td7's update"),
        ({"algo": "td7", "lap_alpha": 0}, "lap_alpha must be > 0"),
        ({"algo": "td7", "target_update_every": -1}, "target_update_every must be >= 0"),
        ({"algo": "td7", "prioritized": True}, "prioritized cannot be combined with lap"),
        ({"algo": "td7", "pixels": True}, "pixels is not supported by td7"),
        ({"algo": "td7", "layer_norm": True}, "layer_norm is not part of td7's networks"),
        ({"algo": "td7", "zs_dim": 0}, "zs_dim must be >= 1"),
        ({"critic_activation": "tanh"}, "critic_activation must be one of relu, elu"),
    ],
)
def test_bad_td7_settings_are_refused_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


def test_td7_on_a_pixel_env_is_one_error_line(tmp_path, capsys):
    argv = ["train", "--env", "tests.helpers:PixelEnv", "--algo", "td7", "--run-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: algo: td7 learns from states")


@pytest.mark.parametrize("switches", [{}, {"sale": False, "lap": False, "value_clip": False, "n_step": 3}])
def test_td7_trains_with_lap_replay_saves_and_loads(tmp_path, switches):
    config = Config(
        env_id="tests.helpers:CountingEnv",
        algo="td7",
        hidden_sizes=[8, 8],
        zs_dim=4,
        encoder_hidden_sizes=[8],
        batch_size=8,
        buffer_size=64,
        learning_starts=20,
        max_episode_steps=15,
        target_update_every=10,
        eval_episodes=1,
        eval_every=10_000,
        progress=False,
        video=False,
        **switches,
    )
    agent = DDPG(config=config)
    summary = agent.learn(60, run_dir=tmp_path / "run")
    assert agent.updates == 41 and summary["update_path"] == "eager"
    assert isinstance(agent.buffer, PrioritizedReplayBuffer) == config.lap
    assert all(torch.isfinite(p).all() for p in agent.learner.encoder.parameters())
    loaded = DDPG.load(tmp_path / "run", env=config.env_id)
    for name, module in agent.learner.modules().items():
        for (key, a), b in zip(
            module.state_dict().items(), loaded.learner.modules()[name].state_dict().values()
        ):
            assert torch.equal(a, b), f"{name}.{key}"
    probe = np.zeros(agent.obs_shape, dtype=np.float32)
    np.testing.assert_array_equal(loaded.act(probe), agent.act(probe))


def test_an_elu_critic_for_td3_runs_on_the_reference_update():
    config = Config(
        algo="td3", critic_activation="elu", hidden_sizes=[8, 8], batch_size=8, learning_starts=20
    )
    agent = DDPG(config=config.replace(eval_episodes=0, progress=False))
    assert isinstance(agent.learner.critic.members[0].hidden[0][-1], torch.nn.ELU)
    summary = agent.learn(40)
    assert summary["update_path"] == "eager" and "activation other than ReLU" in summary["update_reason"]
