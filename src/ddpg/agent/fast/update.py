"""The fast path beside `Learner.update`: the same DDPG (and TD3) update, written as one pure function.

`Learner.update` is the reference: readable, module-based, one optimiser call per network. Here the
same update (critic target, critic loss and its Adam step, actor loss through the freshly updated
critic and its Adam step, both Polyak moves) is one function of plain tensors, so `torch.compile` can
fuse it into a single graph and the per-operator dispatch that dominates small networks disappears.
Its gradients are the hand-written backward of `manual.py`, whose matrix products can go to oneDNN;
the tests check it against the reference, whose gradients come from autograd.

State is shared, not copied: the function reads and writes the learner's own parameter tensors and the
learner's own `torch.optim.Adam` state (`step`, `exp_avg`, `exp_avg_sq`), so `Learner.modules()`,
`Learner.optimizers()`, checkpoints and `DDPG.save/load` see every fast update as if the reference
had made it, and either path can continue where the other stopped.

Covered: MLP actor and critic (any sizes, any `action_layer`), weight decay, gradient clipping,
learning-rate schedules, n-step discounts, prioritized replay's importance weights, and TD3's switches
(twin critics, target policy smoothing, policy delay), and LayerNorm before every hidden ReLU. Anything
else (batch norm, dropout, encoders, other optimisers or options) makes `unsupported_reason` say why,
and the trainer falls back to the reference.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ddpg.agent.fast.backward import (
    LAYER_NORM_EPS,
    MatMul,
    Trace,
    actor_backward,
    actor_forward,
    critic_action_grad,
    critic_backward,
    critic_forward,
    layers_of,
    onednn_available,
)
from ddpg.agent.learner import Learner, TensorBatch, smoothed_target_action
from ddpg.agent.networks import Actor, Critic, CriticEnsemble
from ddpg.agent.sale import NoEncoder, SaleActor, SaleCritic, SaleEncoder
from ddpg.agent.td7 import TD7Learner

Tensors = list[torch.Tensor]
UpdateFn = Callable[[TensorBatch], dict[str, torch.Tensor]]


# ---------------------------------------------------------------------------------------------------
# Adam, clipping and Polyak on tensor lists, matching torch.optim.Adam (foreach, L2 weight decay)
# and nn.utils.clip_grad_norm_.


@dataclass(frozen=True)
class AdamConstants:
    beta1: float
    beta2: float
    eps: float
    weight_decay: float


def clip_by_total_norm(grads: Tensors, max_norm: float) -> Tensors:
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [g * coef for g in grads]


def adam_step_(
    params: Tensors, grads: Tensors, exp_avg: Tensors, exp_avg_sq: Tensors, steps: Tensors,
    lr: torch.Tensor, k: AdamConstants,
) -> None:  # fmt: skip
    """One Adam step in place on the optimiser's own state tensors."""
    torch._foreach_add_(steps, 1)
    if k.weight_decay != 0:
        grads = list(torch._foreach_add(grads, params, alpha=k.weight_decay))
    torch._foreach_lerp_(exp_avg, grads, 1 - k.beta1)
    torch._foreach_mul_(exp_avg_sq, k.beta2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - k.beta2)
    # Bias corrections 1 − β^t as −expm1(t·ln β): exact to float32 rounding, where 1 − 0.999**1 computed
    # in float32 is off by 1e-5 relative (torch.optim.Adam uses Python floats). Float64 here instead
    # cost 5 % of a compiled update.
    log_beta1, log_beta2 = math.log(k.beta1), math.log(k.beta2)
    for p, m, v, step in zip(params, exp_avg, exp_avg_sq, steps):
        # Adam keeps `step` in float32 even for float64 parameters; their corrections need float64.
        step = step if step.dtype == p.dtype else step.to(p.dtype)
        bias1 = -torch.expm1(step * log_beta1)
        bias2_sqrt = (-torch.expm1(step * log_beta2)).sqrt()
        denom = v.sqrt() / bias2_sqrt + k.eps
        p.sub_(lr / bias1 * m / denom)


def adam_constants(opt: torch.optim.Optimizer) -> AdamConstants:
    g = opt.param_groups[0]
    return AdamConstants(float(g["betas"][0]), float(g["betas"][1]), float(g["eps"]), g["weight_decay"])


# torch 2.13 counts the frames a fullgraph call ran compiled in one process-wide counter, which a call
# resets on entry and checks on exit: a compiled update in another thread at the same moment (the seeds
# of a `ddpg tune` trial train in threads) can make a call raise "torch.compile with fullgraph=True found
# no compiled frames". Compiled graphs therefore run one at a time in a process.
_ONE_COMPILED_CALL = threading.Lock()


class Graphs:
    """A fast update's two functions, with and without the actor's step: two graphs rather than a branch
    inside one, so a skipped actor step costs nothing. Compiled (`compile=True`), each compiles on its
    first call, which `compile_seconds` adds up, and every call runs under the process's lock for
    compiled calls; otherwise they run as they are."""

    def __init__(
        self, with_actor: Callable[..., Any], critic_only: Callable[..., Any], compile: bool
    ) -> None:
        self.compiled = compile
        fns = {True: with_actor, False: critic_only}
        if compile:
            fns = {k: torch.compile(fn, fullgraph=True, dynamic=False) for k, fn in fns.items()}
        self._fns = fns
        self._to_compile = {True, False} if compile else set()  # graphs whose first call compiles
        self.compile_seconds: float | None = None

    def __call__(self, step_actor: bool, *args: Any) -> Any:
        fn = self._fns[step_actor]
        if not self.compiled:
            return fn(*args)
        with _ONE_COMPILED_CALL:
            if step_actor not in self._to_compile:
                return fn(*args)
            t0 = time.perf_counter()
            out = fn(*args)
            self._to_compile.remove(step_actor)
            self.compile_seconds = (self.compile_seconds or 0.0) + time.perf_counter() - t0
            return out


class GraphUpdate:
    """What the fast updates share: their `Graphs`, and what those say about compiling."""

    _graphs: Graphs

    @property
    def compiled(self) -> bool:
        return self._graphs.compiled

    @property
    def compile_seconds(self) -> float | None:
        return self._graphs.compile_seconds


class OptimiserTensors:
    """The learner's own `torch.optim.Adam` state as the tensor lists `adam_step_` takes, and each
    optimiser's learning rate as a 0-d tensor (so a schedule does not recompile a graph)."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], dtype: torch.dtype, device: torch.device):
        # One persistent tensor per optimiser, refilled when its learning rate changes.
        self._lrs = {id(opt): torch.zeros((), dtype=dtype, device=device) for opt in optimizers}
        self._lr_values: dict[int, float] = {}
        # Each optimiser's state dict as last seen, and its (exp_avg, exp_avg_sq, step) lists.
        self._states: dict[int, tuple[Any, tuple[Tensors, Tensors, Tensors]]] = {}

    def state(self, opt: torch.optim.Optimizer) -> tuple[Tensors, Tensors, Tensors]:
        # Optimizer.load_state_dict replaces these tensors, and the state dict that holds them: looked up
        # again whenever the dict is not the one seen last (or not yet complete), else the lists kept.
        params = opt.param_groups[0]["params"]
        state = opt.state
        kept = self._states.get(id(opt))
        if kept is not None and kept[0] is state and len(state) == len(params):
            return kept[1]
        if not state or len(state) != len(params):
            for p in params:
                if not state[p]:
                    state[p] = {
                        "step": torch.tensor(0.0, dtype=torch.float32),
                        "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                    }
        entries = [state[p] for p in params]
        lists = (
            [e["exp_avg"] for e in entries],
            [e["exp_avg_sq"] for e in entries],
            [e["step"] for e in entries],
        )
        self._states[id(opt)] = (state, lists)
        return lists

    def lr(self, opt: torch.optim.Optimizer) -> torch.Tensor:
        tensor = self._lrs[id(opt)]
        lr = float(opt.param_groups[0]["lr"])
        if lr != self._lr_values.get(id(opt)):
            tensor.fill_(lr)
            self._lr_values[id(opt)] = lr
        return tensor


# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    tau: float
    grad_clip_norm: float | None
    actor_adam: AdamConstants
    critic_adam: AdamConstants
    # (parameter count, action_layer) of each critic, in `CriticEnsemble.members` order; one for DDPG.
    critics: tuple[tuple[int, int], ...]
    target_policy_noise: float  # TD3's σ; 0: no smoothing
    target_noise_clip: float


def _split(spec: _Spec, params: Tensors) -> list[tuple[Tensors, int]]:
    """Each critic's own parameters and action layer, from the ensemble's flat parameter list."""
    members, start = [], 0
    for count, action_layer in spec.critics:
        members.append((params[start : start + count], action_layer))
        start += count
    return members


def _q_columns(
    mm: MatMul, critics: list[tuple[Tensors, int]], obs: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, list[Trace]]:
    """Q as (B, n_critics), like the reference's `q_columns`, and every critic's trace."""
    outputs = [critic_forward(mm, params, a, obs, action) for params, a in critics]
    qs = [q for q, _ in outputs]
    # One critic (DDPG): a view; stacking a single column measured 2-3 % slower at [400, 300].
    columns = torch.stack(qs, dim=1) if len(qs) > 1 else qs[0][:, None]
    return columns, [trace for _, trace in outputs]


def _manual_update(
    spec: _Spec, mm: MatMul, step_actor: bool,
    actor: Tensors, critic: Tensors, actor_target: Tensors, critic_target: Tensors,
    actor_m: Tensors, actor_v: Tensors, actor_steps: Tensors,
    critic_m: Tensors, critic_v: Tensors, critic_steps: Tensors,
    actor_lr: torch.Tensor, critic_lr: torch.Tensor,
    obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
    terminated: torch.Tensor, discount: torch.Tensor, weight: torch.Tensor, noise: torch.Tensor | None,
) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
    """`Learner.update` on tensor lists, the gradients written out (`manual.py`), every product
    through `mm`; mutates the weights and optimiser states in place. `discount` is γ (0-d) or each
    n-step transition's γ^k, `weight` 1 (0-d) or prioritized replay's importance weights, `noise`
    N(0, 1) draws for TD3's target smoothing (drawn by the caller, as the reference draws them) or
    None. `step_actor`: the actor's step and both Polyak moves happen (TD3's delay skips them)."""
    critics, targets = _split(spec, critic), _split(spec, critic_target)
    next_action, _ = actor_forward(mm, actor_target, next_obs)
    if noise is not None:
        next_action = smoothed_target_action(
            next_action, spec.target_policy_noise, spec.target_noise_clip, noise
        )
    next_q = _q_columns(mm, targets, next_obs, next_action)[0].min(dim=1).values
    y = reward + discount * (1.0 - terminated) * next_q

    # Critic loss mean(w Σ_i (Q_i − y)²): every critic regresses on y, dL/dQ_i = 2 w (Q_i − y) / B.
    q, critic_traces = _q_columns(mm, critics, obs, action)
    td_error = q - y[:, None]
    critic_loss = (weight * td_error.pow(2).sum(dim=1)).mean()
    grad_q = weight.reshape(-1, 1) * td_error * (2.0 / td_error.shape[0])
    critic_grads = [
        g
        for i, ((params, _), trace) in enumerate(zip(critics, critic_traces))
        for g in critic_backward(mm, params, trace, grad_q[:, i])
    ]
    if spec.grad_clip_norm is not None:
        critic_grads = clip_by_total_norm(critic_grads, spec.grad_clip_norm)
    adam_step_(critic, critic_grads, critic_m, critic_v, critic_steps, critic_lr, spec.critic_adam)
    td_abs = td_error[:, 0].abs()  # the first critic's, for prioritized replay
    stats = (critic_loss, td_error.abs().mean(), q.mean(), td_abs)
    if not step_actor:
        return (None, *stats)

    # Actor loss −mean Q_1(s, μ(s)) through the updated first critic: dL/dQ = −1/B, carried back to
    # the action only (the critic stays where it is), then through the actor.
    first, a = critics[0]
    mu, actor_trace = actor_forward(mm, actor, obs)
    q_mu, q_mu_trace = critic_forward(mm, first, a, obs, mu)
    actor_loss = -q_mu.mean()
    grad_q_mu = torch.full_like(q_mu, -1.0 / q_mu.shape[0])
    grad_mu = critic_action_grad(mm, first, a, q_mu_trace, grad_q_mu, mu.shape[1])
    actor_grads = actor_backward(mm, actor, actor_trace, mu, grad_mu)
    if spec.grad_clip_norm is not None:
        actor_grads = clip_by_total_norm(actor_grads, spec.grad_clip_norm)
    adam_step_(actor, actor_grads, actor_m, actor_v, actor_steps, actor_lr, spec.actor_adam)

    torch._foreach_lerp_(actor_target, actor, spec.tau)
    torch._foreach_lerp_(critic_target, critic, spec.tau)
    return (actor_loss, *stats)


def unsupported_reason(learner: Learner) -> str | None:
    """Why the fast path (`FastUpdate`; for a `TD7Learner`, fast/td7.py's `FastTD7Update`) cannot run
    this learner's update, or None when it can."""
    if isinstance(learner, TD7Learner):
        return (
            _sale_network_reason(learner)
            or _optimiser_reason(learner, TD7Learner)
            or _options_reason(learner)
        )
    return _network_reason(learner) or _optimiser_reason(learner, Learner) or _options_reason(learner)


def _sale_network_reason(learner: TD7Learner) -> str | None:
    # TD7's fast path runs the networks' own forward passes, so any of sale.py's will do; only a
    # subclass (with state its forward pass changes, or another forward) is refused.
    networks: list[tuple[str, Any, tuple[type, ...]]] = [("actor", learner.actor, (SaleActor,))]
    networks += [("critic", c, (SaleCritic,)) for c in _members(learner.critic)]
    networks += [("encoder", learner.encoder, (SaleEncoder, NoEncoder))]
    for name, network, kinds in networks:
        if type(network) not in kinds:
            return f"{name} is a {type(network).__name__}, not one of TD7's networks"
    return None


def _network_reason(learner: Learner) -> str | None:
    critics = _members(learner.critic)
    networks: list[tuple[str, Any, type]] = [("actor", learner.actor, Actor)]
    networks += [("critic", c, Critic) for c in critics]
    block_kinds = set()
    for name, network, kind in networks:
        if type(network) is not kind:
            return f"{name} is a {type(network).__name__}, not ddpg's {kind.__name__}"
        module: Any = network  # an Actor or a Critic: a module's attributes are typed loosely
        if not isinstance(module.encoder, nn.Identity) or not isinstance(module.input_norm, nn.Identity):
            return f"{name} has an encoder or batch norm"
        for block in module.hidden:
            layers = [type(m) for m in block]
            if layers not in ([nn.Linear, nn.ReLU], [nn.Linear, nn.LayerNorm, nn.ReLU]):
                return f"{name} has batch norm, dropout or an activation other than ReLU"
            if nn.LayerNorm in layers and not _plain_layer_norm(block[1]):
                return f"{name} has a LayerNorm with options other than nn.LayerNorm's defaults"
            block_kinds.add(tuple(layers))
    if len(block_kinds) > 1:
        return "some hidden layers have a LayerNorm and others not"
    if any(not 0 <= c.action_layer < len(c.hidden) for c in critics):
        return "the action does not enter one of the critic's hidden layers"
    return None


def _optimiser_reason(learner: Learner, twin_of: type[Learner]) -> str | None:
    for name, opt in learner.optimizers().items():
        if type(opt) is not torch.optim.Adam or len(opt.param_groups) != 1:
            return f"{name} is not a single-group torch.optim.Adam"
        g = opt.param_groups[0]
        if g["amsgrad"] or g["maximize"] or g.get("decoupled_weight_decay", False):
            return f"{name} uses an Adam option the fast path does not implement"
    if type(learner).update is not twin_of.update:
        return f"{type(learner).__name__} overrides {twin_of.__name__}.update"
    return None


def _options_reason(learner: Learner) -> str | None:
    # Options added to the learner's sections later are covered only at their defaults.
    known = {"gamma", "tau", "actor_lr", "critic_lr", "actor_weight_decay", "critic_weight_decay"}
    known |= {"grad_clip_norm", "target_policy_noise", "target_noise_clip", "policy_delay"}
    # The loop's (schedules, batch size) and the networks' (twin critics, checked above): not the update's.
    known |= {"actor_lr_schedule", "critic_lr_schedule", "batch_size", "algo", "twin_critics"}
    # TD7's: the config refuses its switches for ddpg and td3, where LAP's exponent and floor and the
    # encoder's learning rate mean nothing.
    known |= {"sale", "lap", "lap_alpha", "lap_min_priority", "target_update_every", "value_clip"}
    known |= {"encoder_lr"}
    changed = [
        f.name
        for section in (learner.optimisation, learner.algorithm)
        for f in dataclasses.fields(section)
        if f.name not in known and getattr(section, f.name) != f.default
    ]
    if changed:
        return f"learner options {changed} are not implemented by the fast path"
    return None


def _plain_layer_norm(norm: nn.LayerNorm) -> bool:
    return norm.eps == LAYER_NORM_EPS and norm.weight is not None and norm.bias is not None


def _members(critic: nn.Module) -> list[Any]:
    """The critics of TD3's ensemble in `members` order, or DDPG's one critic (`Critic`s, once
    `unsupported_reason` passed; Any, as a module's attributes are, until then)."""
    return list(critic.members) if isinstance(critic, CriticEnsemble) else [critic]


class FastUpdate(GraphUpdate):
    """`Learner.update`'s twin: call it with a `TensorBatch`, get the same statistics back.

    With `compile=True` the first call compiles (`compile_seconds` says how long it took; with TD3's
    policy delay, two graphs: with and without the actor's step). `matmul` does the products
    (default: oneDNN for the large ones where it is available). Like the reference, it counts
    `learner.critic_updates`, keeps the last `learner.actor_loss` and returns the batch's |TD error|
    as `td_abs` for prioritized replay.
    """

    def __init__(self, learner: Learner, compile: bool = True, matmul: MatMul | None = None) -> None:
        reason = "td7 takes FastTD7Update" if isinstance(learner, TD7Learner) else unsupported_reason(learner)
        if reason is not None:
            raise ValueError(f"the fast update does not cover this configuration: {reason}")
        self.learner = learner
        s, algo = learner.optimisation, learner.algorithm

        spec = _Spec(
            tau=s.tau,
            grad_clip_norm=s.grad_clip_norm,
            actor_adam=adam_constants(learner.actor_opt),
            critic_adam=adam_constants(learner.critic_opt),
            critics=tuple((len(list(c.parameters())), c.action_layer) for c in _members(learner.critic)),
            target_policy_noise=algo.target_policy_noise,
            target_noise_clip=algo.target_noise_clip,
        )

        mm = matmul or MatMul(onednn=onednn_available(learner.device))
        mm = self.matmul = dataclasses.replace(mm, opaque=compile)

        # Two functions, so each code object keeps one compiled entry per FastUpdate (dynamo's limit is 8).
        def with_actor(*args: Any) -> tuple[torch.Tensor | None, ...]:
            return _manual_update(spec, mm, True, *args)

        def critic_only(*args: Any) -> tuple[torch.Tensor | None, ...]:
            return _manual_update(spec, mm, False, *args)

        self._graphs = Graphs(with_actor, critic_only, compile)
        # Detached aliases share storage with the parameters: writes land in the modules themselves.
        # (load_state_dict copies into parameters in place, so these aliases stay valid after a load.)
        self._weights = [
            [p.detach() for p in module.parameters()]
            for module in (learner.actor, learner.critic, learner.actor_target, learner.critic_target)
        ]
        # Constants in the parameters' dtype, so a float64 learner (the tests' yardstick) gets float64
        # arithmetic throughout, as the reference's Python floats give it.
        dtype, device = self._weights[0][0].dtype, learner.device
        self._optimisers = OptimiserTensors(list(learner.optimizers().values()), dtype, device)
        # For batches without n-step discounts or importance weights: γ and 1, as 0-d tensors.
        self._gamma = torch.tensor(s.gamma, dtype=dtype, device=device)
        self._one = torch.ones((), dtype=dtype, device=device)

    def __call__(self, batch: TensorBatch) -> dict[str, torch.Tensor]:
        lrn, algo = self.learner, self.learner.algorithm
        lrn.critic_updates += 1
        step_actor = lrn.critic_updates % algo.policy_delay == 0
        # The smoothing noise is drawn here, as the reference draws it, so the global generator moves
        # the same way on both paths; the compiled graph only scales, clips and adds it.
        noise = torch.randn_like(batch.action) if algo.target_policy_noise != 0 else None
        with torch.no_grad():
            actor_loss, critic_loss, td_error, q_mean, td_abs = self._graphs(
                step_actor,
                *self._weights,
                *self._optimisers.state(lrn.actor_opt),
                *self._optimisers.state(lrn.critic_opt),
                self._optimisers.lr(lrn.actor_opt),
                self._optimisers.lr(lrn.critic_opt),
                batch.obs,
                batch.action,
                batch.reward,
                batch.next_obs,
                batch.terminated,
                self._gamma if batch.discount is None else batch.discount,
                self._one if batch.weight is None else batch.weight,
                noise,
            )
        if step_actor:
            lrn.actor_loss = actor_loss
        return {
            "critic_loss": critic_loss,
            "actor_loss": lrn.actor_loss,
            "td_error": td_error,
            "q_mean": q_mean,
            "td_abs": td_abs,
        }


class FastActor:
    """μ(s) for acting, without the module machinery: `Learner.act` switches every submodule to eval
    mode on each call, which costs more than the forward pass of a small actor."""

    def __init__(self, learner: Learner) -> None:
        self.device = learner.device
        self._params = [p.detach() for p in learner.actor.parameters()]
        self._mm = MatMul()  # a batch of a few observations: too small for oneDNN to pay
        # Without LayerNorm, the layers' (W, b) pairs, for the loop below: it runs every environment
        # step, where actor_forward's trace and MatMul's checks cost as much as a [64, 64] forward pass.
        # The same F.linear, relu and tanh calls, so the same actions to the bit.
        layers = layers_of(self._params)
        self._plain = None if any(len(p) != 2 for p in layers) else [(p[0], p[1]) for p in layers]
        self._on_cpu = self.device.type == "cpu"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(obs, device=self.device)
            if self._plain is None:
                action, _ = actor_forward(self._mm, self._params, x)
            else:
                *hidden, (w, b) = self._plain
                for hw, hb in hidden:
                    x = F.relu(F.linear(x, hw, hb))
                action = torch.tanh(F.linear(x, w, b))
        return action.numpy() if self._on_cpu else action.cpu().numpy()
