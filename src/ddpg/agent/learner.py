"""The DDPG update (Lillicrap et al. 2016, Algorithm 1), and the state it needs.

The learner sees minibatches and networks only: it does not know where transitions come from.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ddpg.agent.networks import CriticEnsemble
from ddpg.config import AlgorithmConfig, OptimisationConfig
from ddpg.types import Batch


@dataclass(frozen=True)
class TensorBatch:
    obs: torch.Tensor  # (B, *obs_shape)
    action: torch.Tensor  # (B, action_dim), normalised
    reward: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, *obs_shape)
    terminated: torch.Tensor  # (B,) 1.0 at a terminal state
    discount: torch.Tensor | None = None  # (B,) γ^k of an n-step transition; None: gamma
    weight: torch.Tensor | None = None  # (B,) importance weights of prioritized replay; None: ones

    @staticmethod
    def from_numpy(batch: Batch, device: torch.device) -> TensorBatch:
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(device, non_blocking=True)

        return TensorBatch(
            tensor(batch.obs),
            tensor(batch.action),
            tensor(batch.reward),
            tensor(batch.next_obs),
            tensor(batch.terminated),
            None if batch.discount is None else tensor(batch.discount),
            None if batch.weight is None else tensor(batch.weight),
        )


def critic_target(
    reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor, gamma: float | torch.Tensor
) -> torch.Tensor:
    """y = r + γ (1 − terminated) Q'(s', μ'(s')). A truncated episode is not terminated: it bootstraps.

    `gamma` may be a per-transition tensor: γ^k for an n-step transition that spans k rewards."""
    return reward + gamma * (1.0 - terminated) * next_q


def smoothed_target_action(
    action: torch.Tensor, sigma: float, clip: float, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """TD3's target policy smoothing: μ'(s') + clip(N(0, σ²), −c, c), kept in [−1, 1]. `noise`: the
    N(0, 1) draws, drawn here from the global generator when not given (a compiled fast update takes
    them from outside its graph, so both paths draw the same numbers)."""
    if sigma == 0:
        return action
    noise = torch.randn_like(action) if noise is None else noise
    return (action + (noise * sigma).clamp(-clip, clip)).clamp(-1.0, 1.0)


def q_columns(q: torch.Tensor) -> torch.Tensor:
    """Q-values as (B, n_critics): a single critic's (B,) is an ensemble of one."""
    return q.reshape(q.shape[0], -1)


def overestimation(q_mean: float, reward_max: float, reward_scale: float, gamma: float) -> str | None:
    """Why a batch's mean Q(s, a) cannot be a return, or None when it can.

    No discounted return of rewards at most `reward_max` per step exceeds max(reward_max, 0) / (1 − γ),
    so a critic above that has learnt its own overestimation (the actor climbs it, and the policy then
    collapses: the TD3 paper's argument). A tenth of the largest |reward| seen, per step, is allowed
    on top, so that an untrained critic near 0 on a task of negative rewards is not flagged.
    """
    if reward_scale <= 0:  # no reward seen yet, or every one 0: nothing bounds Q usefully
        return None
    bound = (max(reward_max, 0.0) + 0.1 * reward_scale) / (1.0 - gamma)
    if q_mean <= bound:
        return None
    return (
        f"the critic overestimates: mean Q(s, a) = {q_mean:.4g}, but no return can exceed about "
        f"{bound:.4g} with the rewards seen (at most {reward_max:.4g} per step, γ = {gamma:g}); "
        "the actor is following the error. TD3's twin critics (--algo td3), a lower critic_lr or "
        "grad_clip_norm usually cure it, and checkpoints/best keeps the best policy so far"
    )


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """θ' ← τ θ + (1 − τ) θ'. Batch-norm running statistics are copied: they are not learned."""
    target_params: list[torch.Tensor] = list(target.parameters())
    source_params: list[torch.Tensor] = list(source.parameters())
    torch._foreach_lerp_(target_params, source_params, tau)
    for t, s in zip(target.buffers(), source.buffers()):
        t.copy_(s)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into `module` and no running-statistic updates while the block runs."""
    params = [p for p in module.parameters() if p.requires_grad]
    was_training = module.training
    for p in params:
        p.requires_grad_(False)
    module.eval()
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
        module.train(was_training)


@torch.inference_mode()
def run_policy(policy: nn.Module, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """`policy` on a batch of observations, with batch norm and dropout in eval mode."""
    policy.eval()
    return policy(torch.as_tensor(obs, device=device)).cpu().numpy()


class Learner:
    """Actor, critic, their target copies and optimisers; `update` is one step of Algorithm 1.

    Its settings are two sections of the config: `optimisation` (γ, τ, learning rates, weight decays,
    gradient clipping) and `algorithm` (TD3's target smoothing and policy delay; DDPG's by default)."""

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        optimisation: OptimisationConfig,
        algorithm: AlgorithmConfig | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.actor = actor.to(self.device)
        self.critic = critic.to(self.device)
        # The actor climbs the first critic only (TD3); a single critic is its own first.
        self.actor_critic = critic.members[0] if isinstance(critic, CriticEnsemble) else self.critic
        # Targets start as exact copies, never train and never get gradients. Copied together, so that an
        # encoder the actor shares with the critic is shared by their targets too (and computed once).
        self.actor_target, self.critic_target = copy.deepcopy((self.actor, self.critic))
        self.actor_target.requires_grad_(False).eval()
        self.critic_target.requires_grad_(False).eval()
        self.optimisation = s = optimisation
        self.algorithm = algorithm or AlgorithmConfig.of("ddpg")
        self.actor_opt = torch.optim.Adam(
            self.actor.parameters(), lr=s.actor_lr, weight_decay=s.actor_weight_decay
        )
        self.critic_opt = torch.optim.Adam(
            self.critic.parameters(), lr=s.critic_lr, weight_decay=s.critic_weight_decay
        )
        self.critic_updates = 0  # counts updates, so the actor steps every `policy_delay`-th
        self.actor_loss = torch.zeros((), device=self.device)  # reported between delayed actor steps

    def update(self, batch: TensorBatch) -> dict[str, torch.Tensor]:
        """One DDPG update. Returns detached scalars for the logs, and `td_abs` (B,) for prioritized
        replay's priorities; reading them (`.item()`, `.cpu()`) is the caller's choice.

        With TD3's switches: the target takes the minimum over the critics of μ'(s') plus clipped
        noise, and the actor and the targets move every `policy_delay`-th update only."""
        s, algo = self.optimisation, self.algorithm
        gamma = s.gamma if batch.discount is None else batch.discount
        weight = 1.0 if batch.weight is None else batch.weight
        self.actor.train()
        self.critic.train()

        with torch.no_grad():
            next_action = smoothed_target_action(
                self.actor_target(batch.next_obs), algo.target_policy_noise, algo.target_noise_clip
            )
            next_q = q_columns(self.critic_target(batch.next_obs, next_action)).min(dim=1).values
            y = critic_target(batch.reward, batch.terminated, next_q, gamma)
        q = q_columns(self.critic(batch.obs, batch.action))  # (B, n_critics)
        td_error = q - y[:, None]
        critic_loss = (weight * td_error.pow(2).sum(dim=1)).mean()  # each critic regresses on y
        self._step(self.critic_opt, critic_loss, self.critic)
        self.critic_updates += 1

        if self.critic_updates % algo.policy_delay == 0:
            with frozen(self.critic):  # the actor's step must not move the critic
                actor_loss = -self.actor_critic(batch.obs, self.actor(batch.obs)).mean()
                self._step(self.actor_opt, actor_loss, self.actor)
            self.actor_loss = actor_loss.detach()

            polyak_update(*self.target_pairs(), s.tau)
        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": self.actor_loss,
            "td_error": td_error.detach().abs().mean(),
            "q_mean": q.detach().mean(),
            "td_abs": td_error[:, 0].detach().abs(),  # (B,) the first critic's |Q − y|, for priorities
        }

    def target_pairs(self) -> tuple[nn.Module, nn.Module]:
        """The targets and their sources as one module each: a shared encoder's weights appear once in
        their parameters, so a target update moves it once."""
        targets = nn.ModuleList([self.actor_target, self.critic_target])
        return targets, nn.ModuleList([self.actor, self.critic])

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, module: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.optimisation.grad_clip_norm is not None:
            nn.utils.clip_grad_norm_(module.parameters(), self.optimisation.grad_clip_norm)
        optimizer.step()

    def set_learning_rates(self, actor_lr: float, critic_lr: float) -> None:
        for group in self.actor_opt.param_groups:
            group["lr"] = actor_lr
        for group in self.critic_opt.param_groups:
            group["lr"] = critic_lr

    def policy_module(self) -> nn.Module:
        """The deterministic policy as one module, network input → action in [−1, 1]: what `act` runs,
        and what a policy checkpoint copies and an export wraps. An algorithm whose actor needs more
        than the observation (an encoder) returns the composition."""
        return self.actor

    def policy_copy(self) -> nn.Module:
        """A frozen copy of `policy_module()` in eval mode: a policy checkpoint."""
        return copy.deepcopy(self.policy_module()).requires_grad_(False).eval()

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic μ(s) for a batch of observations, with batch norm and dropout in eval mode."""
        return run_policy(self.policy_module(), obs, self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "actor_target": self.actor_target,
            "critic_target": self.critic_target,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_opt": self.actor_opt, "critic_opt": self.critic_opt}
