import numpy as np
import pytest
import torch

from ddpg.agent.networks import (
    ACTOR_FINAL_INIT,
    CRITIC_FINAL_INIT,
    Actor,
    ConvEncoder,
    Critic,
    build_networks,
)
from ddpg.config import Config
from ddpg.types import ActionScale


def test_actions_stay_within_bounds_for_any_input():
    torch.manual_seed(0)
    actor = Actor(4, 3, [32, 32])
    for p in actor.parameters():
        p.data.mul_(100)  # saturate
    scale = ActionScale(np.array([-2.0, 0.0, 10.0], np.float32), np.array([2.0, 1.0, 20.0], np.float32))
    actions = scale.to_env(actor(torch.randn(1000, 4) * 100).detach().numpy())
    assert np.all(actions >= scale.low) and np.all(actions <= scale.high)


def test_action_scale_round_trips():
    scale = ActionScale(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    a = np.array([[-1.0, -1.0], [0.0, 0.5], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(scale.to_env(a), [[-2.0, 0.0], [0.0, 0.75], [2.0, 1.0]])
    np.testing.assert_allclose(scale.from_env(scale.to_env(a)), a, atol=1e-6)


def test_final_layers_are_initialised_small_and_hidden_layers_by_fan_in():
    torch.manual_seed(0)
    actor, critic = Actor(5, 2, [400, 300]), Critic(5, 2, [400, 300])
    assert actor.out.weight.abs().max() <= ACTOR_FINAL_INIT
    assert critic.out.weight.abs().max() <= CRITIC_FINAL_INIT
    first = actor.hidden[0][0]
    assert first.weight.abs().max() <= 1 / np.sqrt(5)
    assert first.weight.abs().max() > 0.9 / np.sqrt(5)


@pytest.mark.parametrize("action_layer", [0, 1, 2])
def test_action_enters_the_critic_at_the_configured_layer(action_layer):
    critic = Critic(5, 2, [8, 6, 4], action_layer=action_layer)
    in_features = [block[0].in_features for block in critic.hidden]
    expected = [5, 8, 6]
    expected[action_layer] += 2
    assert in_features == expected
    assert critic(torch.zeros(3, 5), torch.zeros(3, 2)).shape == (3,)


def test_q_depends_on_the_action():
    torch.manual_seed(0)
    critic = Critic(3, 1, [16, 16])
    torch.nn.init.normal_(critic.out.weight)
    s = torch.zeros(1, 3)
    assert critic(s, torch.tensor([[1.0]])) != critic(s, torch.tensor([[-1.0]]))


@pytest.mark.parametrize("layer_norm", [True, False])
def test_layer_norm_normalises_each_sample_before_every_hidden_relu(layer_norm):
    torch.manual_seed(0)
    config = Config(hidden_sizes=[32, 16], layer_norm=layer_norm, algo="td3")
    actor, critics = build_networks((5,), 2, config)
    relu_inputs = []
    for module in [*actor.modules(), *critics.modules()]:
        if isinstance(module, torch.nn.ReLU):
            module.register_forward_hook(lambda m, args, out: relu_inputs.append(args[0]))
    obs = torch.randn(64, 5) * 50 + 7  # far from unit scale, as raw observations are
    actor(obs)
    critics(obs, torch.rand(64, 2) * 2 - 1)
    assert len(relu_inputs) == 2 * 3  # two layers each in the actor and both twin critics
    normalised = [
        torch.allclose(x.mean(-1), torch.zeros(64), atol=1e-4)
        and torch.allclose(x.std(-1, unbiased=False), torch.ones(64), atol=1e-2)
        for x in relu_inputs
    ]
    assert all(normalised) if layer_norm else not any(normalised)


def test_the_encoder_computes_on_channels_last_frames_what_it_would_on_the_stored_layout():
    # The frames are reordered for faster convolutions; the features and the weights' gradients are the
    # same function of the frames as on the layout the replay buffer stores (channels first).
    torch.manual_seed(0)
    encoder = ConvEncoder((3, 30, 40), [8, 8], 3, [2, 2], features=16)
    frames = torch.randint(0, 256, (4, 3, 30, 40), dtype=torch.uint8)
    reference = encoder.convs(frames.float() / 255.0)
    features = encoder(frames)
    assert features.shape == (4, 16) and frames.is_contiguous()
    torch.testing.assert_close(features, reference, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(features.square().sum(), list(encoder.parameters()))
    expected = torch.autograd.grad(reference.square().sum(), list(encoder.parameters()))
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
    assert all(p.is_contiguous() for p in encoder.parameters())  # safetensors saves them as they are
