"""The TD7 update (Fujimoto et al. 2023, "For SALE: State-Action Representation Learning for Deep RL").

TD7 is TD3 plus four pieces, each a switch of the config's `algorithm` section:
- SALE (`sale`): an encoder learns z_s and z_sa by predicting the next state's z_s; the networks read a
  fixed copy of it, and the targets a fixed copy of that, both moving only with the target update;
- LAP (`lap`): prioritized replay with priorities max(|δ|, 1)^α and a loss that is quadratic below 1
  and linear above, which together sample-correct TD3's squared error without importance weights;
- hard target updates every `target_update_every` updates (250) instead of Polyak averaging;
- value clipping (`value_clip`): Q' in the target is clipped to the range of the targets seen up to
  the last target update, which stops an extrapolation error from feeding on itself.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ddpg.agent.learner import (
    Learner,
    TensorBatch,
    critic_target,
    frozen,
    polyak_update,
    q_columns,
    smoothed_target_action,
)
from ddpg.agent.sale import Encoder, SaleActor, SalePolicy
from ddpg.config import AlgorithmConfig, OptimisationConfig


def lap_loss(td_abs: torch.Tensor, min_priority: float = 1.0) -> torch.Tensor:
    """LAP's Huber-like loss of |δ| (B, n_critics): ½δ² below `min_priority`, min_priority·|δ| above,
    summed over the critics and averaged over the batch."""
    loss = torch.where(td_abs < min_priority, 0.5 * td_abs.pow(2), min_priority * td_abs)
    return loss.sum(dim=1).mean()


class ValueRange(nn.Module):
    """Value clipping's state, as buffers so checkpoints hold it: the smallest and largest target seen
    (`seen`), and the range Q' is clipped to (`bounds`), which is `seen` as of the last target update
    (0 to 0 before the first, as in the reference code)."""

    seen: torch.Tensor
    bounds: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.tensor([torch.inf, -torch.inf]))
        self.register_buffer("bounds", torch.zeros(2))

    def clip(self, q: torch.Tensor) -> torch.Tensor:
        return q.clamp(self.bounds[0], self.bounds[1])

    def observe(self, y: torch.Tensor) -> None:
        self.seen.copy_(
            torch.stack([torch.minimum(self.seen[0], y.min()), torch.maximum(self.seen[1], y.max())])
        )

    def refresh(self) -> None:
        self.bounds.copy_(self.seen)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """θ' ← θ, in place (the target keeps its own tensors)."""
    target.load_state_dict(source.state_dict())


class TD7Networks(Protocol):
    """The networks TD7's losses read: a `TD7Learner`, or the fast path's stand-in (fast/td7.py)
    that runs the same modules on weights passed in."""

    actor: nn.Module
    critic: nn.Module
    actor_target: nn.Module
    critic_target: nn.Module
    encoder: Encoder
    fixed_encoder: Encoder
    fixed_encoder_target: Encoder
    value_range: ValueRange


# TD7's update in pieces, each shared by `TD7Learner.update` and the fast path (fast/td7.py).


def encoder_loss(
    encoder: Encoder, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """SALE's loss: z_sa predicts the next state's z_s, which is a fixed regression target."""
    with torch.no_grad():
        next_zs = encoder.zs(next_obs)
    return F.mse_loss(encoder.zsa(encoder.zs(obs), action), next_zs)


def td7_target(
    n: TD7Networks, algo: AlgorithmConfig, reward: torch.Tensor, next_obs: torch.Tensor,
    terminated: torch.Tensor, gamma: float | torch.Tensor, noise: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """TD3's target through the fixed target encoder, Q' clipped to the range seen (`value_clip`);
    records y in that range. `noise`: the smoothing's N(0, 1) draws, drawn here when not given."""
    next_zs = n.fixed_encoder_target.zs(next_obs)
    next_action = smoothed_target_action(
        n.actor_target(next_obs, next_zs), algo.target_policy_noise, algo.target_noise_clip, noise
    )
    next_zsa = n.fixed_encoder_target.zsa(next_zs, next_action)
    next_q = q_columns(n.critic_target(next_obs, next_action, next_zsa, next_zs)).min(dim=1).values
    if algo.value_clip:
        next_q = n.value_range.clip(next_q)
    y = critic_target(reward, terminated, next_q, gamma)
    n.value_range.observe(y)
    return y


def td7_critic_loss(
    critic: nn.Module, algo: AlgorithmConfig, obs: torch.Tensor, action: torch.Tensor,
    zsa: torch.Tensor, zs: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The critics' loss against y, Q (B, n_critics) and |δ| (B, n_critics): LAP's loss, or TD3's
    squared error, importance-weighted under prioritized replay (`weight`; None: ones)."""
    q = q_columns(critic(obs, action, zsa, zs))
    td_abs = (q - y[:, None]).abs()
    if algo.lap:
        return lap_loss(td_abs, algo.lap_min_priority), q, td_abs
    return ((1.0 if weight is None else weight) * td_abs.pow(2).sum(dim=1)).mean(), q, td_abs


def td7_actor_loss(n: TD7Networks, obs: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
    """The actor climbs the mean of the critics (the reference's -Q.mean() over both), its action
    reaching them directly and through the fixed encoder's z_sa."""
    pi = n.actor(obs, zs)
    return -q_columns(n.critic(obs, pi, n.fixed_encoder.zsa(zs, pi), zs)).mean()


class TD7Learner(Learner):
    """TD3's learner with SALE's encoders, LAP's loss, hard target updates and value clipping.

    `update` returns what `Learner.update` returns, plus `encoder_loss`, and `target_update` (a bool
    tensor): whether the targets moved in this update, when LAP resets the replay's largest priority.
    `td_abs` is the largest |δ| over the critics, LAP's priority before its floor and exponent."""

    def __init__(
        self,
        actor: SaleActor,
        critic: nn.Module,
        encoder: Encoder,
        optimisation: OptimisationConfig,
        algorithm: AlgorithmConfig,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(actor, critic, optimisation, algorithm, device)
        self.encoder: Encoder = encoder.to(self.device)
        # The networks read the fixed encoder; the targets the fixed target encoder, one update behind.
        self.fixed_encoder = copy.deepcopy(self.encoder).requires_grad_(False).eval()
        self.fixed_encoder_target = copy.deepcopy(self.encoder).requires_grad_(False).eval()
        params = list(self.encoder.parameters())
        self.encoder_opt = torch.optim.Adam(params, lr=optimisation.encoder_lr) if params else None
        self.value_range = ValueRange().to(self.device)
        self.encoder_loss = torch.zeros((), device=self.device)  # 0 without SALE
        self._policy = SalePolicy(actor, self.fixed_encoder)

    def update(self, batch: TensorBatch) -> dict[str, torch.Tensor]:
        algo = self.algorithm
        obs, action = batch.obs, batch.action
        gamma = self.optimisation.gamma if batch.discount is None else batch.discount
        self.actor.train()
        self.critic.train()

        if self.encoder_opt is not None:  # SALE's encoder first; the critic reads the fixed copies
            self.encoder_loss = encoder_loss(self.encoder, obs, action, batch.next_obs)
            self._step(self.encoder_opt, self.encoder_loss, self.encoder)

        with torch.no_grad():  # the critic's target, and the embeddings of (s, a) it reads
            y = td7_target(self, algo, batch.reward, batch.next_obs, batch.terminated, gamma)
            zs = self.fixed_encoder.zs(obs)
            zsa = self.fixed_encoder.zsa(zs, action)
        critic_loss, q, td_abs = td7_critic_loss(self.critic, algo, obs, action, zsa, zs, y, batch.weight)
        self._step(self.critic_opt, critic_loss, self.critic)
        self.critic_updates += 1

        actor_step = self.critic_updates % algo.policy_delay == 0  # the actor is delayed
        if actor_step:
            with frozen(self.critic):
                actor_loss = td7_actor_loss(self, obs, zs)
                self._step(self.actor_opt, actor_loss, self.actor)
            self.actor_loss = actor_loss.detach()

        target_update = self.target_update_due(actor_step)
        if target_update:
            self.update_targets()
        return {
            "critic_loss": critic_loss.detach(),
            "actor_loss": self.actor_loss,
            "encoder_loss": self.encoder_loss.detach(),
            "td_error": td_abs.detach().mean(),
            "q_mean": q.detach().mean(),
            "td_abs": td_abs.detach().max(dim=1).values,
            "target_update": torch.tensor(target_update),  # on the CPU: reading it costs no sync
        }

    def target_update_due(self, actor_step: bool) -> bool:
        """Whether the targets move after this update: every `target_update_every` updates (hard), or
        with each actor step (Polyak)."""
        every = self.algorithm.target_update_every
        return self.critic_updates % every == 0 if every else actor_step

    def update_targets(self) -> None:
        """Every target takes its source's weights (hard) or moves by τ towards them (Polyak); the
        fixed target encoder takes the fixed encoder's before the fixed encoder takes the encoder's."""
        pairs = [
            self.target_pairs(),  # the actor's and the critic's
            (self.fixed_encoder_target, self.fixed_encoder),
            (self.fixed_encoder, self.encoder),
        ]
        for target, source in pairs:
            if self.algorithm.target_update_every:
                hard_update(target, source)
            else:
                polyak_update(target, source, self.optimisation.tau)
        self.value_range.refresh()

    def policy_module(self) -> nn.Module:
        return self._policy

    def modules(self) -> dict[str, nn.Module]:
        return {
            **super().modules(),
            "encoder": self.encoder,
            "fixed_encoder": self.fixed_encoder,
            "fixed_encoder_target": self.fixed_encoder_target,
            "value_range": self.value_range,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        extra = {"encoder_opt": self.encoder_opt} if self.encoder_opt is not None else {}
        return {**super().optimizers(), **extra}
