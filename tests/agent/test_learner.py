import copy

import numpy as np
import pytest
import torch

from ddpg.agent.learner import Learner, TensorBatch, critic_target, frozen, polyak_update
from ddpg.agent.networks import Actor, Critic
from ddpg.config import Config
from tests.helpers import random_batch

OBS, ACT, B = 3, 2, 8


def make_learner(batch_norm=False, tau=0.05, **kw) -> Learner:
    torch.manual_seed(0)
    actor = Actor(OBS, ACT, [16, 16], batch_norm=batch_norm)
    critic = Critic(OBS, ACT, [16, 16], action_layer=1, batch_norm=batch_norm)
    config = Config(gamma=0.9, tau=tau, actor_lr=1e-2, critic_lr=1e-2, **kw)
    return Learner(actor, critic, config.optimisation, config.algorithm)


def make_batch(seed=0) -> TensorBatch:
    return random_batch(seed, B, OBS, ACT, p_terminal=0.5)


def test_critic_target_bootstraps_on_truncation_but_not_on_termination():
    reward = torch.tensor([1.0, 1.0, -2.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])  # the first is a time-limit truncation: not terminated
    next_q = torch.tensor([10.0, 10.0, 4.0])
    y = critic_target(reward, terminated, next_q, gamma=0.5)
    assert y.tolist() == [1.0 + 0.5 * 10.0, 1.0, -2.0 + 0.5 * 4.0]


def test_update_uses_target_networks_for_y():
    learner = make_learner()
    batch = make_batch()
    with torch.no_grad():
        next_q = learner.critic_target(batch.next_obs, learner.actor_target(batch.next_obs))
        expected_y = batch.reward + 0.9 * (1 - batch.terminated) * next_q
        q = learner.critic(batch.obs, batch.action)
        expected_loss = ((q - expected_y) ** 2).mean()
    stats = learner.update(batch)
    assert stats["critic_loss"].item() == pytest.approx(expected_loss.item(), rel=1e-6)


def test_polyak_update_moves_targets_by_tau():
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = copy.deepcopy(target.state_dict())
    polyak_update(target, source, tau=0.1)
    for name, value in target.state_dict().items():
        expected = 0.1 * source.state_dict()[name] + 0.9 * before[name]
        torch.testing.assert_close(value, expected)


def test_targets_start_as_exact_copies():
    learner = make_learner()
    for online, target in ((learner.actor, learner.actor_target), (learner.critic, learner.critic_target)):
        for a, b in zip(online.state_dict().values(), target.state_dict().values()):
            assert torch.equal(a, b)


def test_targets_never_get_gradients():
    learner = make_learner()
    learner.update(make_batch())
    for target in (learner.actor_target, learner.critic_target):
        assert all(not p.requires_grad and p.grad is None for p in target.parameters())


def test_actor_step_leaves_critic_weights_unchanged():
    learner = make_learner()
    batch = make_batch()
    critic_before = copy.deepcopy(learner.critic.state_dict())
    with frozen(learner.critic):
        loss = -learner.critic(batch.obs, learner.actor(batch.obs)).mean()
        learner._step(learner.actor_opt, loss, learner.actor)
    for name, value in learner.critic.state_dict().items():
        assert torch.equal(value, critic_before[name]), name
    assert all(p.requires_grad for p in learner.critic.parameters())  # unfrozen afterwards


def test_update_changes_both_networks_and_moves_targets_toward_them():
    learner = make_learner(tau=0.5)
    actor0 = [p.clone() for p in learner.actor.parameters()]
    target0 = [p.clone() for p in learner.actor_target.parameters()]
    learner.update(make_batch())
    assert any(not torch.equal(a, b) for a, b in zip(actor0, learner.actor.parameters()))
    for t0, t1, online in zip(target0, learner.actor_target.parameters(), learner.actor.parameters()):
        torch.testing.assert_close(t1, 0.5 * online + 0.5 * t0)


def test_batch_norm_target_statistics_follow_online_networks():
    learner = make_learner(batch_norm=True)
    for seed in range(3):
        learner.update(make_batch(seed))
    for online, target in ((learner.actor, learner.actor_target), (learner.critic, learner.critic_target)):
        online_stats = [b for n, b in online.named_buffers() if "running_mean" in n]
        target_stats = [b for n, b in target.named_buffers() if "running_mean" in n]
        assert online_stats and any(s.abs().sum() > 0 for s in online_stats)
        for a, b in zip(online_stats, target_stats):
            assert torch.equal(a, b)


def test_acting_uses_eval_mode_so_batch_norm_and_dropout_are_deterministic():
    torch.manual_seed(0)
    actor = Actor(OBS, ACT, [16, 16], batch_norm=True, dropout=0.5)
    critic = Critic(OBS, ACT, [16, 16], batch_norm=True, dropout=0.5)
    config = Config(gamma=0.9, tau=0.1, actor_lr=1e-3, critic_lr=1e-3)
    learner = Learner(actor, critic, config.optimisation, config.algorithm)
    learner.update(make_batch())
    obs = np.ones((1, OBS), dtype=np.float32)
    first = learner.act(obs)
    assert np.array_equal(first, learner.act(obs))  # dropout off, running statistics used
    # In train mode batch norm would normalise a batch of identical rows to zero; eval mode does not.
    np.testing.assert_allclose(learner.act(np.tile(obs, (4, 1)))[:1], first, rtol=1e-5)


def test_critic_weight_decay_shrinks_weights_without_signal():
    learner = make_learner(critic_weight_decay=1.0)
    batch = make_batch()
    zero = TensorBatch(batch.obs, batch.action, torch.zeros(B), batch.next_obs, torch.ones(B))
    norm0 = sum(p.norm() for p in learner.critic.parameters())
    for _ in range(20):
        learner.update(zero)
    assert sum(p.norm() for p in learner.critic.parameters()) < norm0


def test_gradient_clipping_bounds_the_step():
    learner = make_learner(grad_clip_norm=1e-3)
    batch = make_batch()
    huge = TensorBatch(batch.obs, batch.action, batch.reward * 1e6, batch.next_obs, batch.terminated)
    before = [p.clone() for p in learner.critic.parameters()]
    learner.update(huge)
    # Adam normalises step size anyway; clipping must keep every gradient finite and the step bounded.
    step = max((a - b).abs().max().item() for a, b in zip(before, learner.critic.parameters()))
    assert step <= 1e-2 * 1.01


def test_learning_rates_can_be_changed():
    learner = make_learner()
    learner.set_learning_rates(1e-5, 2e-5)
    assert learner.actor_opt.param_groups[0]["lr"] == 1e-5
    assert learner.critic_opt.param_groups[0]["lr"] == 2e-5


def test_overestimation_is_a_mean_q_above_the_largest_discounted_return_the_rewards_allow():
    from ddpg.agent.learner import overestimation

    # Rewards up to 3 per step, γ = 0.99: no return above (3 + 0.1 · 3) / 0.01 = 330.
    assert overestimation(300.0, 3.0, 3.0, 0.99) is None
    assert "mean Q(s, a) = 400" in overestimation(400.0, 3.0, 3.0, 0.99)
    # All rewards ≤ 0: an untrained critic near 0 is allowed a tenth of the reward scale per step.
    assert overestimation(5.0, -0.5, 16.0, 0.99) is None
    assert overestimation(200.0, -0.5, 16.0, 0.99) is not None
    # Nothing seen yet (or every reward 0): nothing to compare with.
    assert overestimation(1e9, -float("inf"), 0.0, 0.99) is None
