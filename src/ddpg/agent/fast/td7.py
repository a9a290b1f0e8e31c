"""TD7's fast update: `TD7Learner.update` as one pure function of the learner's own tensors.

It runs the reference's own pieces (`encoder_loss`, `td7_target`, `td7_critic_loss`, `td7_actor_loss`
in agent/td7.py), in the reference's order, on the learner's weights passed in as tensors
(`torch.func.functional_call`); `torch.func.grad` gives each step's gradients and `adam_step_` steps
the learner's own Adam state, as `FastUpdate` does for DDPG and TD3, so checkpoints and either path
continue each other. Compiled, the encoder's, the critic's and the actor's steps become one graph
whose backward passes AOTAutograd traces: autograd's bookkeeping, the optimisers' Python and most
per-operator dispatch go, and inductor fuses the element-wise work (ELU, AvgL1Norm, LAP, Adam).

The backward is not hand-written as DDPG's and TD3's: TD7's networks (AvgL1Norm, ELU, the embeddings
joined in, the actor's gradient reaching the critics through the fixed encoder's z_sa) would take a
second copy of every forward pass, and the matrix products that bound this update (two thirds of its
time) cost the same whichever way its gradients are written (docs/BENCHMARKS.md).

Target updates are the reference's `TD7Learner.update_targets`, outside the graph: a copy every
`target_update_every` updates (250), or Polyak's lerps with each actor step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad

from ddpg.agent.fast.update import (
    AdamConstants,
    Graphs,
    GraphUpdate,
    OptimiserTensors,
    Tensors,
    adam_constants,
    adam_step_,
    clip_by_total_norm,
    unsupported_reason,
)
from ddpg.agent.learner import TensorBatch
from ddpg.agent.td7 import TD7Learner, encoder_loss, td7_actor_loss, td7_critic_loss, td7_target
from ddpg.config import AlgorithmConfig

Weights = dict[str, torch.Tensor]


class _Networks(nn.Module):
    """The learner's networks under one root, so that one `functional_call` runs a loss on weights
    passed in: `forward(fn, *args)` is `fn(self, *args)`. It shares the learner's modules."""

    def __init__(self, learner: TD7Learner) -> None:
        super().__init__()
        self.actor = learner.actor
        self.critic = learner.critic
        self.actor_target = learner.actor_target
        self.critic_target = learner.critic_target
        self.encoder = learner.encoder
        self.fixed_encoder = learner.fixed_encoder
        self.fixed_encoder_target = learner.fixed_encoder_target
        self.value_range = learner.value_range

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self, *args)


@dataclass(frozen=True)
class _Spec:
    algorithm: AlgorithmConfig
    grad_clip_norm: float | None
    # Each trained network ("encoder" with SALE, "critic", "actor"): the names of its optimiser's
    # parameters among the weights, in the optimiser's order, and its Adam constants.
    trained: tuple[tuple[str, tuple[str, ...], AdamConstants], ...]


def _td7_update(
    spec: _Spec, nets: _Networks, step_actor: bool, weights: Weights,
    optimisers: dict[str, tuple[Tensors, Tensors, Tensors, torch.Tensor]],
    obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
    terminated: torch.Tensor, discount: torch.Tensor, weight: torch.Tensor | None,
    noise: torch.Tensor | None,
) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
    """`TD7Learner.update` up to its target update; mutates the weights and Adam states in place.
    `optimisers`: each trained network's (exp_avg, exp_avg_sq, step, lr). `noise`: the smoothing's
    N(0, 1) draws (drawn by the caller, as the reference draws them) or None. `step_actor`: the
    actor steps (the policy delay skips it otherwise). Returns (actor_loss or None, critic_loss,
    encoder_loss or None, td_error, q_mean, td_abs)."""
    algo = spec.algorithm

    def run(fn: Callable[..., Any], trained: Weights | None = None) -> Any:
        return functional_call(nets, weights if trained is None else {**weights, **trained}, (fn,))

    def step(network: str, loss: Callable[[_Networks], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        """One network's step on `loss(networks)[0]`; returns all of `loss`'s outputs, detached."""
        names, constants = next((names, k) for name, names, k in spec.trained if name == network)

        def of(trained: Weights) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            out = run(loss, trained)
            return out[0], out

        grads, out = grad(of, has_aux=True)({name: weights[name] for name in names})
        gradients = [grads[name] for name in names]
        if spec.grad_clip_norm is not None:
            gradients = clip_by_total_norm(gradients, spec.grad_clip_norm)
        exp_avg, exp_avg_sq, steps, lr = optimisers[network]
        adam_step_([weights[n] for n in names], gradients, exp_avg, exp_avg_sq, steps, lr, constants)
        return out

    encoder_loss_ = None
    if "encoder" in optimisers:
        (encoder_loss_,) = step("encoder", lambda n: (encoder_loss(n.encoder, obs, action, next_obs),))

    def target(n: _Networks) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = td7_target(n, algo, reward, next_obs, terminated, discount, noise)
        zs = n.fixed_encoder.zs(obs)
        return y, zs, n.fixed_encoder.zsa(zs, action)

    y, zs, zsa = run(target)
    critic_loss, q, td_abs = step(
        "critic", lambda n: td7_critic_loss(n.critic, algo, obs, action, zsa, zs, y, weight)
    )
    actor_loss = step("actor", lambda n: (td7_actor_loss(n, obs, zs),))[0] if step_actor else None
    return actor_loss, critic_loss, encoder_loss_, td_abs.mean(), q.mean(), td_abs.max(dim=1).values


class FastTD7Update(GraphUpdate):
    """`TD7Learner.update`'s twin: call it with a `TensorBatch`, get the same statistics back.

    With `compile=True` the first call of each kind (with and without the actor's step) compiles
    (`compile_seconds` says how long it took). Like the reference, it counts
    `learner.critic_updates`, keeps the last `learner.actor_loss` and `learner.encoder_loss`, moves
    the targets when due and says so as `target_update`."""

    def __init__(self, learner: TD7Learner, compile: bool = True) -> None:
        reason = unsupported_reason(learner) if isinstance(learner, TD7Learner) else "not a TD7Learner"
        if reason is not None:
            raise ValueError(f"the fast td7 update does not cover this configuration: {reason}")
        self.learner = learner
        nets = _Networks(learner)
        # Detached aliases share storage with the modules' tensors: writes land in the modules themselves
        # (load_state_dict and the hard target update copy into them in place, so the aliases stay valid).
        self._weights = {name: t.detach() for name, t in [*nets.named_parameters(), *nets.named_buffers()]}
        name_of = {id(p): name for name, p in nets.named_parameters()}
        trained = {"encoder": learner.encoder_opt, "critic": learner.critic_opt, "actor": learner.actor_opt}
        self._optimizers = {key: opt for key, opt in trained.items() if opt is not None}
        spec = _Spec(
            algorithm=learner.algorithm,
            grad_clip_norm=learner.optimisation.grad_clip_norm,
            trained=tuple(
                (key, tuple(name_of[id(p)] for p in opt.param_groups[0]["params"]), adam_constants(opt))
                for key, opt in self._optimizers.items()
            ),
        )

        # A second FastTD7Update of the same shapes and switches reuses the compiled graphs (every tensor is
        # an argument; the modules are only read for their structure), as the tests and choose_update's
        # timing do.
        def with_actor(*args: Any) -> tuple[torch.Tensor | None, ...]:
            return _td7_update(spec, nets, True, *args)

        def critic_only(*args: Any) -> tuple[torch.Tensor | None, ...]:
            return _td7_update(spec, nets, False, *args)

        self._graphs = Graphs(with_actor, critic_only, compile)
        dtype = next(iter(self._weights.values())).dtype
        self._optimisers = OptimiserTensors(list(self._optimizers.values()), dtype, learner.device)
        self._gamma = torch.tensor(learner.optimisation.gamma, dtype=dtype, device=learner.device)

    def __call__(self, batch: TensorBatch) -> dict[str, torch.Tensor]:
        lrn, algo = self.learner, self.learner.algorithm
        lrn.critic_updates += 1
        step_actor = lrn.critic_updates % algo.policy_delay == 0
        # Drawn here, as the reference draws it, so the global generator moves alike on both paths.
        noise = torch.randn_like(batch.action) if algo.target_policy_noise != 0 else None
        optimisers = {
            key: (*self._optimisers.state(opt), self._optimisers.lr(opt))
            for key, opt in self._optimizers.items()
        }
        with torch.no_grad():
            actor_loss, critic_loss, encoder_loss_, td_error, q_mean, td_abs = self._graphs(
                step_actor,
                self._weights,
                optimisers,
                batch.obs,
                batch.action,
                batch.reward,
                batch.next_obs,
                batch.terminated,
                self._gamma if batch.discount is None else batch.discount,
                batch.weight,
                noise,
            )
        if encoder_loss_ is not None:
            lrn.encoder_loss = encoder_loss_
        if actor_loss is not None:
            lrn.actor_loss = actor_loss
        target_update = lrn.target_update_due(step_actor)
        if target_update:
            lrn.update_targets()
        assert critic_loss is not None and td_error is not None and q_mean is not None and td_abs is not None
        return {
            "critic_loss": critic_loss,
            "actor_loss": lrn.actor_loss,
            "encoder_loss": lrn.encoder_loss,
            "td_error": td_error,
            "q_mean": q_mean,
            "td_abs": td_abs,
            "target_update": torch.tensor(target_update),
        }
