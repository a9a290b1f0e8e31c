"""TD7's networks (Fujimoto et al. 2023): SALE's encoders, and the actor and critic that read them.

SALE (state-action learned embeddings) learns z_s = f(s) and z_sa = g(z_s, a) by making z_sa predict
the next state's z_s'. The actor takes (s, z_s), the critic (s, a, z_sa, z_s). Each network first maps
its raw input through one linear layer normalised by AvgL1Norm, so that the raw input and the
embeddings it is joined with are of one scale. Without SALE (`sale: false`) the embeddings are empty
and the same networks read the state and the action alone.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from ddpg.agent.networks import ACTIVATIONS, CriticEnsemble
from ddpg.config import Config

AVG_L1_EPS = 1e-8  # the reference's: a guard against an all-zero row, far below any real magnitude


def avg_l1_norm(x: torch.Tensor, eps: float = AVG_L1_EPS) -> torch.Tensor:
    """x divided by the mean of its |entries| over the last dimension: features of average magnitude 1."""
    return x / x.abs().mean(dim=-1, keepdim=True).clamp(min=eps)


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers between consecutive `sizes`, each followed by `activation`."""
    layers: list[nn.Module] = []
    for i, o in itertools.pairwise(sizes):
        layers += [nn.Linear(i, o), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """What TD7's update asks of an encoder: z_s of a batch of states, z_sa of z_s and actions."""

    def zs(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def zsa(self, zs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class SaleEncoder(Encoder):
    """z_s = AvgL1Norm(f(s)) and z_sa = g(z_s, a), both of `zs_dim` features."""

    def __init__(
        self, obs_dim: int, action_dim: int, zs_dim: int, hidden_sizes: list[int], activation: str
    ) -> None:
        super().__init__()
        self.state = nn.Sequential(
            mlp([obs_dim, *hidden_sizes], activation), nn.Linear(hidden_sizes[-1], zs_dim)
        )
        self.state_action = nn.Sequential(
            mlp([zs_dim + action_dim, *hidden_sizes], activation), nn.Linear(hidden_sizes[-1], zs_dim)
        )

    def zs(self, obs: torch.Tensor) -> torch.Tensor:
        return avg_l1_norm(self.state(obs))

    def zsa(self, zs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.state_action(torch.cat([zs, action], dim=-1))


class NoEncoder(Encoder):
    """TD7 without SALE: empty embeddings, nothing to learn."""

    def zs(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.new_zeros(obs.shape[0], 0)

    def zsa(self, zs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return zs


class SaleActor(nn.Module):
    """μ(s, z_s): AvgL1Norm(Linear(s)) joined by z_s, then the hidden layers, then tanh."""

    def __init__(
        self, obs_dim: int, action_dim: int, zs_dim: int, hidden_sizes: list[int], activation: str = "relu"
    ) -> None:
        super().__init__()
        self.input = nn.Linear(obs_dim, hidden_sizes[0])
        self.hidden = mlp([hidden_sizes[0] + zs_dim, *hidden_sizes], activation)
        self.out = nn.Linear(hidden_sizes[-1], action_dim)

    def forward(self, obs: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
        x = torch.cat([avg_l1_norm(self.input(obs)), zs], dim=-1)
        return torch.tanh(self.out(self.hidden(x)))


class SaleCritic(nn.Module):
    """Q(s, a, z_sa, z_s): AvgL1Norm(Linear(s, a)) joined by z_sa and z_s, then the hidden layers."""

    def __init__(
        self, obs_dim: int, action_dim: int, zs_dim: int, hidden_sizes: list[int], activation: str = "elu"
    ) -> None:
        super().__init__()
        self.input = nn.Linear(obs_dim + action_dim, hidden_sizes[0])
        self.hidden = mlp([hidden_sizes[0] + 2 * zs_dim, *hidden_sizes], activation)
        self.out = nn.Linear(hidden_sizes[-1], 1)

    def forward(
        self, obs: torch.Tensor, action: torch.Tensor, zsa: torch.Tensor, zs: torch.Tensor
    ) -> torch.Tensor:
        """Returns Q with shape (batch,)."""
        x = avg_l1_norm(self.input(torch.cat([obs, action], dim=-1)))
        return self.out(self.hidden(torch.cat([x, zsa, zs], dim=-1))).squeeze(-1)


class SalePolicy(nn.Module):
    """The deterministic policy as one module, observation → action: the actor fed with an encoder's z_s
    (TD7 acts with the fixed encoder, as the reference's `select_action`). It shares their weights."""

    def __init__(self, actor: SaleActor, encoder: Encoder) -> None:
        super().__init__()
        self.actor = actor
        self.encoder = encoder

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(obs, self.encoder.zs(obs))


def build_sale_networks(
    obs_shape: tuple[int, ...], action_dim: int, config: Config
) -> tuple[SaleActor, SaleCritic | CriticEnsemble, Encoder]:
    """TD7's actor, critic (twin with `twin_critics`) and encoder as the config's `networks` section
    sizes them: `hidden_sizes` and `critic_hidden_sizes` are the layers after the normalised input
    layer (which has the first layer's width), the actor's activation is ReLU, the critic's and the
    encoder's `critic_activation` (ELU in the paper). Initialised with torch's defaults, as the paper."""
    net, algo = config.networks, config.algorithm
    obs_dim = int(np.prod(obs_shape))
    zs_dim = net.zs_dim if algo.sale else 0
    encoder: Encoder = (
        SaleEncoder(obs_dim, action_dim, zs_dim, net.encoder_hidden_sizes, net.critic_activation)
        if algo.sale
        else NoEncoder()
    )
    actor = SaleActor(obs_dim, action_dim, zs_dim, net.hidden_sizes)

    def critic() -> SaleCritic:
        return SaleCritic(obs_dim, action_dim, zs_dim, net.critic_sizes, net.critic_activation)

    twin = CriticEnsemble([critic(), critic()]) if algo.twin_critics else critic()
    return actor, twin, encoder
