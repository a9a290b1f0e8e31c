import csv

import numpy as np
import pytest
import torch

from ddpg import DDPG, Config
from ddpg.agent.learner import Learner, TensorBatch
from ddpg.agent.networks import ConvEncoder, build_networks
from ddpg.cli import main
from ddpg.config import ConfigError
from ddpg.data.frames import FrameReplayBuffer
from ddpg.envs import EnvError
from ddpg.envs.wrappers import ActionRepeat, FrameStack, Grayscale, make_wrapped_env, resize_frame
from tests.helpers import CountingEnv, PixelEnv

TINY = dict(
    hidden_sizes=[16, 16],
    conv_channels=[4, 4, 4],
    batch_size=8,
    learning_starts=50,
    eval_every=10_000,
    eval_episodes=1,
    log_every=20,
    progress=False,
    video=False,
)


def test_pixels_turn_a_state_env_into_stacked_uint8_frames():
    env = make_wrapped_env("Pendulum-v1", {}, Config(pixels=True, frame_size=20))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (9, 20, 20) and obs.dtype == np.uint8
    assert env.observation_space.shape == obs.shape


def test_frame_stack_starts_an_episode_with_copies_of_its_first_frame():
    env = FrameStack(PixelEnv(), 3)
    first, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(1, np.float32))
    assert (first == 0).all()
    np.testing.assert_array_equal(obs[:6], first[:6])  # two oldest frames are still the first frame
    assert (obs[6:] == 10).all()  # newest frame last, channels first


def test_action_repeat_sums_rewards_and_stops_when_the_episode_ends():
    env = ActionRepeat(CountingEnv(terminate_at=2), 3)
    env.reset(seed=0)
    obs, reward, terminated, _, _ = env.step(np.array([1.5], np.float32))
    assert reward == 3.0 and terminated and obs[0] == 2


def test_grayscale_keeps_one_channel():
    env = Grayscale(PixelEnv())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (12, 12, 1) == env.observation_space.shape


def test_resize_averages_blocks():
    frame = np.zeros((4, 4, 1), np.uint8)
    frame[:2, :2] = 200
    np.testing.assert_array_equal(resize_frame(frame, 2, 2)[..., 0], [[200, 0], [0, 0]])


def test_encoder_scales_uint8_frames_to_unit_range_inside_the_network():
    encoder = ConvEncoder((3, 16, 16), [2], 3, [1])
    frames = torch.full((1, 3, 16, 16), 255, dtype=torch.uint8)
    assert torch.allclose(encoder(frames), encoder(torch.ones(1, 3, 16, 16) * 255.0))
    assert torch.allclose(encoder.convs(torch.ones(1, 3, 16, 16)), encoder(frames))


def test_shared_encoder_is_trained_by_the_critic_only():
    actor, critic = build_networks((9, 16, 16), 2, Config(share_encoder=True, conv_strides=[1, 1, 1]))
    assert actor.encoder.module is critic.encoder
    frames = torch.randint(0, 256, (4, 9, 16, 16), dtype=torch.uint8)
    actor(frames).sum().backward()
    assert all(p.grad is None for p in critic.encoder.parameters())
    critic(frames, torch.zeros(4, 2)).sum().backward()
    assert all(p.grad is not None for p in critic.encoder.parameters())


def test_separate_encoders_by_default():
    actor, critic = build_networks((9, 16, 16), 2, Config(conv_strides=[1, 1, 1]))
    assert not set(map(id, actor.parameters())) & set(map(id, critic.parameters()))


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"frame_stack": 0}, "frame_stack"),
        ({"frame_size": 8}, "frame_size"),
        ({"action_repeat": 0}, "action_repeat"),
        ({"conv_strides": [2, 2]}, "conv_strides"),
    ],
)
def test_bad_pixel_settings_name_the_field(fields, name):
    with pytest.raises(ConfigError, match=name):
        Config(**fields)


def test_native_frames_too_small_for_the_encoder_are_refused():
    config = Config(env_id="LaneFollowing-v0", env={"camera_width": 16, "camera_height": 16}, **TINY)
    with pytest.raises(ConfigError, match=r"frame_size.*too small"):
        DDPG(config=config.replace(conv_kernel=5))


def test_pixels_from_an_env_that_cannot_render_are_refused():
    with pytest.raises(EnvError, match="cannot render rgb_array"):
        make_wrapped_env("tests.helpers:NoRenderEnv", {}, Config(pixels=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "frame_stack=0"], "frame_stack must be >= 1"),
        (["--set", "env.reward=no_such_module_xyz:f"], "cannot import 'no_such_module_xyz:f'"),
        (["--set", "env.camera_width=16", "env.camera_height=16", "conv_kernel=5"], "too small"),
        (["--env", "tests.helpers:NoRenderEnv", "--set", "pixels=true"], "cannot render rgb_array"),
        (["--set", "obs_norm=true"], "obs_norm: 'LaneFollowing-v0' has pixel observations"),
    ],
)
def test_bad_pixel_input_is_one_error_line_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--env", "LaneFollowing-v0", *args] if "--env" not in args else args
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_reward_returning_nan_stops_training_with_an_error_line(capsys, tmp_path):
    args = ["train", "--env", "LaneFollowing-v0", "--steps", "5", "--run-dir", str(tmp_path / "r")]
    assert main([*args, "--set", "env.reward=tests.helpers:nan_reward", "progress=false"]) == 2
    assert "nan_reward returned nan" in capsys.readouterr().err


def test_trainer_records_the_reward_the_hook_returns_for_each_pose(tmp_path):
    reward = "tests.helpers:seven_if_given_a_lane_pose"
    env = {"camera_width": 16, "camera_height": 16, "max_steps": 30, "reward": reward}
    config = Config(env_id="LaneFollowing-v0", env=env, conv_strides=[1, 1, 1], seed=1, **TINY)
    DDPG(config=config.replace(learning_starts=1000)).learn(120, run_dir=tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        episodes = list(csv.DictReader(f))
    assert episodes and all(float(e["return"]) == 7.0 * int(e["length"]) for e in episodes)


def test_pixel_training_smoke_run_uses_the_frame_buffer_and_checkpoints(tmp_path):
    config = Config(
        env_id="LaneFollowing-v0",
        env={"camera_width": 16, "camera_height": 16, "max_steps": 60},
        conv_strides=[1, 1, 1],
        action_repeat=2,
        share_encoder=True,
        **TINY,
    )
    agent = DDPG(config=config)
    summary = agent.learn(200, run_dir=tmp_path / "run")
    assert isinstance(agent.buffer, FrameReplayBuffer) and agent.updates > 0
    assert np.isfinite(summary["final_eval_mean_return"])
    loaded = DDPG.load(tmp_path / "run")
    obs, _ = loaded.env.reset(seed=0)
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))


@pytest.mark.parametrize("n_step", [1, 3])
def test_several_pixel_envs_keep_each_envs_frames_in_its_own_stacks(tmp_path, n_step):
    # Three envs whose episodes end at different steps: every stored observation and next observation
    # must show one env's one episode, at consecutive moments (the first repeated at an episode start).
    config = Config(
        **{**TINY, "learning_starts": 30},
        env_id="tests.helpers:TaggedPixelEnv",
        n_envs=3,
        vectorization="sync",
        n_step=n_step,
        buffer_size=200,
        total_steps=150,
        conv_strides=[2, 1, 1],
    )
    agent = DDPG(config=config)
    agent.learn(run_dir=tmp_path / "run")
    stored = agent.buffer.transitions()
    k = config.frame_stack
    steps = (
        np.rint(np.log(stored.discount) / np.log(config.gamma)) if n_step > 1 else np.ones(len(stored.obs))
    )
    tags = set()
    for obs, next_obs, j in zip(stored.obs, stored.next_obs, steps):
        now, later = obs.reshape(k, 3, 12, 12)[:, :, 0, 0], next_obs.reshape(k, 3, 12, 12)[:, :, 0, 0]
        frames = np.concatenate([now, later])
        assert len({tuple(f[1:]) for f in frames}) == 1  # one env, one episode
        t = now[:, 0] // 10
        assert set(np.diff(t)) <= {0, 1} and (np.diff(t) == 0).sum() == k - 1 - min(t[-1], k - 1)
        assert later[-1, 0] // 10 == t[-1] + j
        tags.add(int(now[0, 1]))
    pending = sum(len(w.window) for w in agent.buffer.windows)  # n-step: each env's last steps wait for more
    assert len(tags) == 3 and len(stored.obs) == 150 - pending
    agent.close()


def test_encoder_features_are_bounded_by_layer_norm_and_tanh():
    encoder = ConvEncoder((3, 16, 16), [4], 3, [2], features=10)
    features = encoder(torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8))
    assert features.shape == (5, 10) and encoder.out_features == 10
    assert features.abs().max() <= 1.0


def pixel_learner(algo: str, reuse: bool = True) -> Learner:
    config = Config(
        algo=algo, share_encoder=True, conv_channels=[4, 4], conv_strides=[2, 1], hidden_sizes=[16, 16]
    )
    torch.manual_seed(0)
    actor, critic = build_networks((3, 16, 16), 2, config)
    if not reuse:  # every encoding computed afresh, as before features were reused
        for module in [*actor.modules(), *critic.modules()]:
            if isinstance(module, ConvEncoder):
                module._reusable = lambda obs: False  # type: ignore[method-assign]
    return Learner(actor, critic, config.optimisation, config.algorithm)


def frame_batches(n: int) -> list[TensorBatch]:
    g = torch.Generator().manual_seed(1)

    def frames() -> torch.Tensor:
        return torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=g)

    return [
        TensorBatch(
            frames(),
            torch.rand(8, 2, generator=g) * 2 - 1,
            torch.randn(8, generator=g),
            frames(),
            torch.zeros(8),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_reusing_an_update_s_encodings_changes_no_weight(algo):
    # With a shared encoder the update encodes s and s' once per set of weights; every weight, target
    # and optimiser moment must come out as with each encoding computed afresh, bit for bit.
    reusing, fresh = pixel_learner(algo), pixel_learner(algo, reuse=False)
    for i, batch in enumerate(frame_batches(6)):
        for learner in (reusing, fresh):
            torch.manual_seed(i)  # TD3's target noise: the same draws for both
            learner.update(batch)
    for name, module in reusing.modules().items():
        for (key, a), b in zip(module.state_dict().items(), fresh.modules()[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key}"
    for name, opt in reusing.optimizers().items():
        for a, b in zip(opt.state.values(), fresh.optimizers()[name].state.values()):
            assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_a_ddpg_pixel_update_runs_the_shared_encoder_three_times():
    # The critic's loss on s (with its gradient), the targets on s', the actor's loss on s: not five.
    learner = pixel_learner("ddpg")
    calls = []
    for encoder in {
        id(m): m
        for m in [*learner.actor.modules(), *learner.actor_target.modules()]
        if isinstance(m, ConvEncoder)
    }.values():
        encoder.convs.register_forward_hook(lambda *_: calls.append(1))
    learner.update(frame_batches(1)[0])
    assert len(calls) == 3


def test_the_shared_target_encoder_moves_once_per_update():
    # The target actor and the target critic share the target encoder; τ must move it once, not twice.
    learner = pixel_learner("ddpg")
    assert learner.actor_target.encoder.module is learner.critic_target.encoder
    before = [p.clone() for p in learner.critic_target.encoder.parameters()]
    learner.update(frame_batches(1)[0])
    tau = learner.optimisation.tau
    for old, new, source in zip(
        before, learner.critic_target.encoder.parameters(), learner.critic.encoder.parameters()
    ):
        assert torch.equal(new, torch.lerp(old, source, tau))


def test_features_are_computed_again_when_frames_or_weights_change_outside_autograd():
    # A buffer refilled in place and weights written through `.data` (or by a fused optimiser) keep
    # their version counters: the encoder must still see the new values.
    encoder = ConvEncoder((3, 16, 16), [4, 4], 3, [2, 1], features=8)
    stored = np.zeros((2, 3, 16, 16), np.uint8)
    frames = torch.from_numpy(stored)
    with torch.no_grad():
        first = encoder(frames)
        stored[:] = np.random.default_rng(0).integers(0, 256, stored.shape, dtype=np.uint8)
        refilled = encoder(frames)
        torch.testing.assert_close(refilled, encoder.convs(frames.float() / 255.0))
        assert not torch.equal(first, refilled)
        encoder.convs[0].weight.data.add_(0.1)
        torch.testing.assert_close(encoder(frames), encoder.convs(frames.float() / 255.0))
