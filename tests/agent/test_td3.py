import copy
import dataclasses

import numpy as np
import pytest
import torch

from ddpg.agent.learner import Learner, TensorBatch, smoothed_target_action
from ddpg.agent.networks import Actor, Critic, CriticEnsemble
from ddpg.config import Config
from tests.helpers import random_batch

OBS, ACT, B, GAMMA = 3, 2, 8, 0.9


def make_learner(twin: bool = True, **kw) -> Learner:
    torch.manual_seed(0)
    actor = Actor(OBS, ACT, [16, 16])
    critics = [Critic(OBS, ACT, [16, 16]) for _ in range(2 if twin else 1)]
    critic = CriticEnsemble(critics) if twin else critics[0]
    config = Config(gamma=GAMMA, tau=0.1, actor_lr=1e-2, critic_lr=1e-2, **kw)
    return Learner(actor, critic, config.optimisation, config.algorithm)


def make_batch(seed: int = 0, weight: np.ndarray | None = None) -> TensorBatch:
    batch = random_batch(seed, B, OBS, ACT, p_terminal=0.3)
    return batch if weight is None else dataclasses.replace(batch, weight=torch.as_tensor(weight))


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b.parameters()))


def test_target_smoothing_noise_is_clipped_and_actions_stay_in_range():
    torch.manual_seed(1)
    action = torch.rand(1000, ACT) * 1.6 - 0.8
    smoothed = smoothed_target_action(action, sigma=10.0, clip=0.3)
    assert (smoothed - action).abs().max() <= 0.3 + 1e-6
    assert smoothed.abs().max() <= 1.0
    assert torch.equal(smoothed_target_action(action, sigma=0.0, clip=0.3), action)


def test_td3_target_is_the_minimum_of_the_twin_target_critics_at_the_smoothed_action():
    learner = make_learner(target_policy_noise=0.5, target_noise_clip=0.2)
    with torch.no_grad():  # make the twins disagree, either way round
        learner.critic_target.members[1].out.bias.fill_(0.1)
        learner.critic_target.members[1].out.weight.normal_(0, 0.3)
    batch = make_batch()
    torch.manual_seed(7)
    with torch.no_grad():
        next_action = learner.actor_target(batch.next_obs)
        next_action = (next_action + (torch.randn_like(next_action) * 0.5).clamp(-0.2, 0.2)).clamp(-1, 1)
        next_q = learner.critic_target(batch.next_obs, next_action)  # (B, 2)
        assert set(next_q.argmin(dim=1).tolist()) == {0, 1}  # the minimum comes from both
        y = batch.reward + GAMMA * (1 - batch.terminated) * next_q.min(dim=1).values
        q = learner.critic(batch.obs, batch.action)
        expected = ((q[:, 0] - y) ** 2).mean() + ((q[:, 1] - y) ** 2).mean()
    torch.manual_seed(7)
    stats = learner.update(batch)
    assert stats["critic_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_actor_and_targets_update_only_every_policy_delay_th_update():
    learner = make_learner(policy_delay=3)
    for i in range(1, 7):
        actor, critic = params(learner.actor), params(learner.critic)
        targets = params(learner.actor_target), params(learner.critic_target)
        learner.update(make_batch(i))
        assert not same(critic, learner.critic)  # the critic steps every update
        delayed = i % 3 == 0
        assert same(actor, learner.actor) != delayed, i
        assert same(targets[0], learner.actor_target) != delayed, i
        assert same(targets[1], learner.critic_target) != delayed, i


def test_actor_follows_the_first_critic():
    learner = make_learner()
    batch = make_batch()
    actor_before = copy.deepcopy(learner.actor)
    stats = learner.update(batch)  # policy_delay 1: the actor steps after the critic, on its new weights
    with torch.no_grad():
        expected = -learner.critic.members[0](batch.obs, actor_before(batch.obs)).mean()
    assert stats["actor_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_importance_weights_scale_each_transitions_squared_td_error():
    weight = np.linspace(0.1, 1.0, B).astype(np.float32)
    learner = make_learner(twin=False)
    batch = make_batch(weight=weight)
    with torch.no_grad():
        next_q = learner.critic_target(batch.next_obs, learner.actor_target(batch.next_obs))
        y = batch.reward + GAMMA * (1 - batch.terminated) * next_q
        expected = (batch.weight * (learner.critic(batch.obs, batch.action) - y) ** 2).mean()
    stats = learner.update(batch)
    assert stats["critic_loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert stats["td_abs"].shape == (B,)


def test_unit_weights_give_exactly_the_unweighted_update():
    plain, weighted = make_learner(twin=False), make_learner(twin=False)
    a = plain.update(make_batch())
    b = weighted.update(make_batch(weight=np.ones(B, dtype=np.float32)))
    assert torch.equal(a["critic_loss"], b["critic_loss"]) and same(params(plain.actor), weighted.actor)
