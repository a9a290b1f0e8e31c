"""Actor μ(s) and critic Q(s, a), initialised as in the paper.

Both networks work in normalised action units: the actor's tanh output lies in [-1, 1]^d and the critic
takes actions in that range. `ActionScale` maps to and from the environment's [low, high] at the edge,
so the replay buffer, the noise and the critic never see the environment's own units.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ddpg.config import Config, ConfigError, NetworksConfig, min_frame_size

ACTOR_FINAL_INIT = 3e-3
CRITIC_FINAL_INIT = 3e-4


def fan_in_uniform_(layer: nn.Linear) -> None:
    # Paper, section 7: hidden layers from U(-1/sqrt(f), 1/sqrt(f)), f the layer's fan-in.
    bound = 1.0 / math.sqrt(layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)


def final_uniform_(layer: nn.Linear, bound: float) -> None:
    # Small final weights keep initial actions and Q-values near zero, away from tanh saturation.
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def _hidden_block(
    in_features: int,
    out_features: int,
    batch_norm: bool,
    dropout: float,
    layer_norm: bool = False,
    activation: str = "relu",
) -> nn.Sequential:
    linear = nn.Linear(in_features, out_features)
    fan_in_uniform_(linear)
    layers: list[nn.Module] = [linear]
    if batch_norm:
        layers.append(nn.BatchNorm1d(out_features))
    if layer_norm:
        # Before the ReLU, as in OpenAI Baselines' DDPG and Plappert et al. 2018: per-sample, so the
        # same in training, acting and targets, unlike batch norm.
        layers.append(nn.LayerNorm(out_features))
    layers.append(ACTIVATIONS[activation]())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """μ(s): features → hidden layers → tanh, in normalised action units."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: list[int],
        batch_norm: bool = False,
        dropout: float = 0.0,
        encoder: nn.Module | None = None,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else nn.Identity()
        # Paper: batch norm on the state input and on every layer of μ.
        self.input_norm = nn.BatchNorm1d(obs_dim) if batch_norm else nn.Identity()
        sizes = [obs_dim, *hidden_sizes]
        self.hidden = nn.Sequential(
            *(_hidden_block(i, o, batch_norm, dropout, layer_norm) for i, o in itertools.pairwise(sizes))
        )
        self.out = nn.Linear(sizes[-1], action_dim)
        final_uniform_(self.out, ACTOR_FINAL_INIT)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.hidden(self.input_norm(self.encoder(obs)))))


class Critic(nn.Module):
    """Q(s, a). The action joins at hidden layer `action_layer` (paper: 1, after the first layer)."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: list[int],
        action_layer: int = 1,
        batch_norm: bool = False,
        dropout: float = 0.0,
        encoder: nn.Module | None = None,
        layer_norm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else nn.Identity()
        self.action_layer = action_layer
        # Paper: batch norm on the state input and on the layers before the action enters.
        self.input_norm = nn.BatchNorm1d(obs_dim) if batch_norm else nn.Identity()
        blocks = []
        in_features = obs_dim
        for i, size in enumerate(hidden_sizes):
            if i == action_layer:
                in_features += action_dim
            blocks.append(
                _hidden_block(
                    in_features, size, batch_norm and i < action_layer, dropout, layer_norm, activation
                )
            )
            in_features = size
        self.hidden = nn.ModuleList(blocks)
        self.out = nn.Linear(in_features, 1)
        final_uniform_(self.out, CRITIC_FINAL_INIT)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Returns Q with shape (batch,)."""
        x = self.input_norm(self.encoder(obs))
        for i, block in enumerate(self.hidden):
            if i == self.action_layer:
                x = torch.cat([x, action], dim=-1)
            x = block(x)
        return self.out(x).squeeze(-1)


class CriticEnsemble(nn.Module):
    """Independent critics Q_1 … Q_n, for TD3's twin critics. Returns Q with shape (batch, n). Each
    member takes the same inputs: (s, a), or TD7's (s, a, z_sa, z_s)."""

    def __init__(self, critics: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(critics)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([critic(*inputs) for critic in self.members], dim=-1)


def build_networks(
    obs_shape: tuple[int, ...], action_dim: int, config: Config
) -> tuple[Actor, Critic | CriticEnsemble]:
    """The actor and critic a config's `networks` section asks for: flat observations of `obs_shape`,
    or with a conv encoder in front when observations are channels-first uint8 frame stacks (C, H, W).
    With the algorithm's `twin_critics`, the critic is an ensemble of two (TD3)."""
    net, twin = config.networks, config.algorithm.twin_critics
    if len(obs_shape) == 3:
        return _build_pixel_networks(obs_shape, action_dim, net, twin)
    obs_dim = int(np.prod(obs_shape))
    actor = Actor(obs_dim, action_dim, net.hidden_sizes, **_layer_options(net))

    def critic() -> Critic:
        return Critic(
            obs_dim,
            action_dim,
            net.critic_sizes,
            net.action_layer,
            activation=net.critic_activation,
            **_layer_options(net),
        )

    return actor, _critics(critic, twin)


def _layer_options(net: NetworksConfig) -> dict:
    """What every hidden layer of both networks gets from the config."""
    return {"batch_norm": net.batch_norm, "dropout": net.dropout, "layer_norm": net.layer_norm}


def _critics(make: Callable[[], Critic], twin: bool) -> Critic | CriticEnsemble:
    return CriticEnsemble([make(), make()]) if twin else make()


class ConvEncoder(nn.Module):
    """uint8 frames (B, C, H, W) → features (B, F): scaled to [0, 1] here, then conv + ReLU layers.

    Paper: three conv layers of 32 filters, no pooling. Frames stay uint8 in the replay buffer; this
    is the only place they become floats.
    """

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        channels: list[int],
        kernel: int,
        strides: list[int],
        features: int = 0,
    ):
        super().__init__()
        c, h, w = obs_shape
        if min(h, w) < min_frame_size(kernel, strides):
            raise ConfigError(
                f"frame_size: frames of {h}x{w} are too small for the encoder "
                f"(kernel {kernel}, strides {strides}) which needs at least {min_frame_size(kernel, strides)}"
            )
        layers: list[nn.Module] = []
        for out, stride in zip(channels, strides):
            layers += [nn.Conv2d(c, out, kernel, stride), nn.ReLU()]
            c = out
        layers.append(nn.Flatten())
        with torch.no_grad():
            flat = int(nn.Sequential(*layers)(torch.zeros(1, *obs_shape)).shape[-1])
        if features:
            # Bounded features (SAC-AE, DrQ): raw conv features grow without limit and drive the
            # actor's tanh into saturation within a few hundred updates.
            layers += [nn.Linear(flat, features), nn.LayerNorm(features), nn.Tanh()]
        self.convs = nn.Sequential(*layers)
        self.out_features = features or flat
        self._last: tuple[list[torch.Tensor], torch.Tensor] | None = None  # (frames and weights, features)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # An update encodes the same frames with the same weights twice where no gradient flows: s' for
        # the target actor and the target critic, s for the actor and the critic in the actor's loss, when
        # the two share this encoder. The second time returns the first's features: the convolutions are
        # most of a pixel update's time. Kept copies are compared by value, not by identity or version
        # counters, which writes outside autograd (a buffer refilled in place, a fused optimiser) leave
        # unchanged; copying and comparing cost about 3 % of the convolutions they save.
        reusable = self._reusable(obs)
        if reusable:
            inputs = [obs, *self.parameters()]
            if self._last is not None and _equal(self._last[0], inputs):
                return self._last[1]
        # Channels-last frames (the weights stay as they are) take oneDNN's faster convolutions: a
        # Duckietown-v0 update runs x1.3 faster on one CPU thread (bench/pixel_update.py).
        features = self.convs(obs.contiguous(memory_format=torch.channels_last).float() / 255.0)
        if reusable:
            self._last = ([t.detach().clone() for t in inputs], features)
        elif self._last is not None:  # (only then: an exporter's trace must see no state change)
            self._last = None
        return features

    def _reusable(self, obs: torch.Tensor) -> bool:
        """Whether features of `obs` may be kept and returned again: neither they nor anything computed
        from them needs a gradient, and nothing is being traced into a graph."""
        if torch.compiler.is_compiling() or torch.jit.is_tracing():  # (export) a graph keeps no state
            return False
        if torch.is_inference_mode_enabled():  # acting: one call per batch of frames, nothing to reuse
            return False
        tracked = obs.requires_grad or any(p.requires_grad for p in self.parameters())
        return not (torch.is_grad_enabled() and tracked)

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "_last": None}  # copies and pickles carry no frames


def _equal(kept: list[torch.Tensor], given: list[torch.Tensor]) -> bool:
    return len(kept) == len(given) and all(
        a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)
        for a, b in zip(kept, given)
    )


class StopGradient(nn.Module):
    """Another module's output without its gradient: the actor reads the critic's encoder but only
    the critic's loss trains it."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        # Saved copies, not views of the critic's tensors: checkpoints refuse tensors that share memory.
        self.register_state_dict_post_hook(_clone_entries)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x).detach()


def _clone_entries(module: nn.Module, state: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state if k.startswith(prefix)]:
        state[key] = state[key].clone()


def _build_pixel_networks(
    obs_shape: tuple[int, ...], action_dim: int, net: NetworksConfig, twin: bool
) -> tuple[Actor, Critic | CriticEnsemble]:
    def encoder() -> ConvEncoder:
        channels, height, width = obs_shape  # a stack of frames, channels first
        return ConvEncoder(
            (channels, height, width),
            net.conv_channels,
            net.conv_kernel,
            net.conv_strides,
            net.encoder_features,
        )

    critic_encoder = encoder()
    actor_encoder = StopGradient(critic_encoder) if net.share_encoder else encoder()
    features = critic_encoder.out_features
    actor = Actor(features, action_dim, net.hidden_sizes, encoder=actor_encoder, **_layer_options(net))
    critic_encoders = [critic_encoder, encoder()] if twin else [critic_encoder]
    critics = [
        Critic(
            features,
            action_dim,
            net.critic_sizes,
            net.action_layer,
            encoder=e,
            activation=net.critic_activation,
            **_layer_options(net),
        )
        for e in critic_encoders  # a twin critic has an encoder of its own
    ]
    return actor, CriticEnsemble(critics) if len(critics) > 1 else critics[0]
