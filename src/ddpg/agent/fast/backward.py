"""The actor's and critic's backward passes written out by hand, with a choice of matrix library.

A DDPG MLP needs only the derivatives of `linear`, `relu`, `tanh`, `cat` and (optionally) `layer_norm`,
so its gradients fit in a few lines without autograd. What that buys is control over the matrix
products: on CPUs where torch's float32 `mm` goes to a slow BLAS path (MKL on AMD Zen 4 ran
~100 GFLOP/s on one core) oneDNN does the same products about twice as fast, and autograd cannot be
told to use it (see docs/performance.md).

Every product here is `MatMul`'s y = x·wᵀ (+ b): the forward pass is x·Wᵀ, the gradient into a
layer's input g·W = linear(g, Wᵀ), the gradient of its weight gᵀ·x = linear(gᵀ, xᵀ); the transposes
are views, and both libraries read them without a copy.

Parameter lists are in `module.parameters()` order: [W0, b0, …, W_out, b_out], with each hidden layer's
LayerNorm gain and bias after its W and b when the networks have them. `Trace.inputs[i]` is the input of
layer i as the forward pass saw it (for the critic's layer `action_layer`, with the action
concatenated), the last entry the input of the output layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

Tensors = list[torch.Tensor]

# oneDNN only for products whose every dimension is at least this large: at [64, 64] it is no faster
# than BLAS and at the thin first and last layers (3 or 1 features) it is slower (docs/BENCHMARKS.md,
# "hand-written backward").
ONEDNN_MIN_SIZE = 128
LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, the only one the fast path takes


def onednn_available(device: torch.device) -> bool:
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


def _onednn_linear_eager(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


# The op `ddpg::onednn_linear`, opaque to torch.compile: inductor's own lowering of
# mkldnn._linear_pointwise assumes a weight layout of its choosing, which gave wrong results with the
# transposed views used here. Defined through torch.library.Library rather than the @custom_op
# decorator, whose Python wrapper cost ~7 µs per call against ~1.6 µs (4 % of a [400, 300] update).
# Registered on first use, not at import: importing ddpg must not change torch's operator registry.
_OP_NAME = "ddpg::onednn_linear"
_op: torch._ops.OpOverload | None = None
_library: torch.library.Library | None = None  # held: a collected Library drops its registrations
_registering = threading.Lock()


def _onednn_linear_fake(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty(x.shape[0], w.shape[0])


def onednn_linear_op() -> torch._ops.OpOverload:
    """`ddpg::onednn_linear` (x·wᵀ (+ b) by oneDNN), registered with torch on the first call only."""
    global _op, _library
    if _op is None:
        with _registering:
            if _op is None:
                lib = torch.library.Library("ddpg", "FRAGMENT")  # other ddpg ops may join the namespace
                lib.define("onednn_linear(Tensor x, Tensor w, Tensor? b) -> Tensor")
                lib.impl("onednn_linear", _onednn_linear_eager, "CPU")
                torch.library.register_fake(_OP_NAME, _onednn_linear_fake, lib=lib)
                _library, _op = lib, torch.ops.ddpg.onednn_linear.default
    return _op


@dataclass(frozen=True)
class MatMul:
    """y = x·wᵀ (+ b) for 2-d x and w: oneDNN for large products when `onednn`, `F.linear` otherwise.

    `opaque` calls oneDNN through the opaque op `ddpg::onednn_linear`, for code under torch.compile;
    `min_size` is the smallest dimension of a product that goes to oneDNN."""

    onednn: bool = False
    opaque: bool = False
    min_size: int = ONEDNN_MIN_SIZE

    def __post_init__(self) -> None:
        if self.onednn and self.opaque:
            onednn_linear_op()  # now, in eager code: torch.compile must find the op already defined

    def __call__(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        large = min(x.shape[0], x.shape[1], w.shape[0]) >= self.min_size
        if self.onednn and large and x.dtype == torch.float32 and _dense(x) and _dense(w):
            return (onednn_linear_op() if self.opaque else _onednn_linear_eager)(x, w, b)
        return F.linear(x, w, b)


def _dense(t: torch.Tensor) -> bool:
    """Row- or column-major without gaps between rows or columns. oneDNN's fast inner products (brgemm
    on AVX-512) take only these; a strided view such as W[:, :256].t() of a [256, 257] weight went to
    its reference kernel, ~2000x slower (460 ms for a 256-cubed product). BLAS takes any stride."""
    return t.is_contiguous() or t.t().is_contiguous()


def _linear_backward(mm: MatMul, g: torch.Tensor, x: torch.Tensor, grads: Tensors) -> None:
    # Appended in reverse order (bias, then weight), as the backward pass walks the layers backwards.
    grads += [g.sum(0), mm(g.t(), x.t())]


class Trace(NamedTuple):
    """What a forward pass keeps for its backward pass."""

    inputs: Tensors  # the input of every linear layer, the output layer's last
    norms: list[tuple[torch.Tensor, torch.Tensor]]  # each hidden layer's LayerNorm (x̂, 1/σ); [] without


def layers_of(params: Tensors) -> list[Tensors]:
    """Parameters by layer: [W, b] or, with LayerNorm, [W, b, gain, bias] per hidden layer; [W, b] last.
    The network says which: after a hidden layer's W and b comes a 1-d gain, or the next 2-d W."""
    k = 4 if len(params) > 2 and params[2].dim() == 1 else 2
    return [params[i : i + k] for i in range(0, len(params) - 2, k)] + [params[-2:]]


def _hidden(mm: MatMul, x: torch.Tensor, p: Tensors, norms: list) -> torch.Tensor:
    h = mm(x, p[0], p[1])
    if len(p) == 4:  # LayerNorm over the features, as nn.LayerNorm: biased variance, eps inside the root
        centred = h - h.mean(-1, keepdim=True)
        rstd = torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + LAYER_NORM_EPS)
        x_hat = centred * rstd
        norms.append((x_hat, rstd))
        h = torch.addcmul(p[3], x_hat, p[2])
    return F.relu(h)


def _hidden_backward(
    g: torch.Tensor, out: torch.Tensor, p: Tensors, trace: Trace, layer: int, grads: Tensors | None
) -> torch.Tensor:
    """From dL/d(output) of hidden layer `layer` (parameters `p`, ReLU output `out`) to dL/d(its linear's
    output), appending its LayerNorm's bias and gain gradients to `grads` (when given)."""
    g = g * (out > 0)  # ReLU passes the gradient where its output was positive
    if len(p) == 2:
        return g
    x_hat, rstd = trace.norms[layer]
    if grads is not None:
        grads += [g.sum(0), (g * x_hat).sum(0)]
    g = g * p[2]
    # y = x̂·gain + bias with x̂ = (h − mean h)·rstd: the mean and the variance take their shares.
    return rstd * (g - g.mean(-1, keepdim=True) - x_hat * (g * x_hat).mean(-1, keepdim=True))


def actor_forward(mm: MatMul, params: Tensors, obs: torch.Tensor) -> tuple[torch.Tensor, Trace]:
    """μ(s), and what its backward pass needs."""
    layers = layers_of(params)
    trace = Trace([], [])
    x = obs
    for p in layers[:-1]:
        trace.inputs.append(x)
        x = _hidden(mm, x, p, trace.norms)
    trace.inputs.append(x)
    return torch.tanh(mm(x, *layers[-1])), trace


def actor_backward(
    mm: MatMul, params: Tensors, trace: Trace, action: torch.Tensor, grad_action: torch.Tensor
) -> Tensors:
    """dL/dθ_μ from dL/dμ(s): through tanh (1 − μ²), then each layer; none into the observation."""
    layers = layers_of(params)
    g = grad_action * (1.0 - action * action)
    grads: Tensors = []
    for layer in reversed(range(len(layers))):
        _linear_backward(mm, g, trace.inputs[layer], grads)
        if layer > 0:
            g = mm(g, layers[layer][0].t())
            g = _hidden_backward(g, trace.inputs[layer], layers[layer - 1], trace, layer - 1, grads)
    return grads[::-1]


def critic_forward(
    mm: MatMul, params: Tensors, action_layer: int, obs: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, Trace]:
    """Q(s, a) with shape (batch,), and what its backward pass needs."""
    layers = layers_of(params)
    trace = Trace([], [])
    x = obs
    for layer, p in enumerate(layers[:-1]):
        if layer == action_layer:
            x = torch.cat([x, action], dim=-1)
        trace.inputs.append(x)
        x = _hidden(mm, x, p, trace.norms)
    trace.inputs.append(x)
    return mm(x, *layers[-1]).squeeze(-1), trace


def critic_backward(mm: MatMul, params: Tensors, trace: Trace, grad_q: torch.Tensor) -> Tensors:
    """dL/dθ_Q from dL/dQ; none into the observation or the action."""
    layers = layers_of(params)
    g = grad_q[:, None]
    grads: Tensors = []
    for layer in reversed(range(len(layers))):
        _linear_backward(mm, g, trace.inputs[layer], grads)
        if layer > 0:
            # Only the columns of the previous layer's output: at the action layer the input is
            # [h, a], and the action's share of the gradient is not needed here. Sliced from the
            # product rather than from W, so the product reads all of W, a dense operand (see `_dense`).
            width = layers[layer - 1][0].shape[0]
            g = mm(g, layers[layer][0].t())[:, :width]
            out = trace.inputs[layer][:, :width]
            g = _hidden_backward(g, out, layers[layer - 1], trace, layer - 1, grads)
    return grads[::-1]


def critic_action_grad(
    mm: MatMul, params: Tensors, action_layer: int, trace: Trace, grad_q: torch.Tensor, action_dim: int
) -> torch.Tensor:
    """dL/da from dL/dQ: back from the output to the layer the action joins, no weight gradients."""
    layers = layers_of(params)
    g = grad_q[:, None]
    for layer in reversed(range(len(layers))):
        w = layers[layer][0]
        if layer == action_layer:
            return mm(g, w[:, w.shape[1] - action_dim :].t())
        g = _hidden_backward(mm(g, w.t()), trace.inputs[layer], layers[layer - 1], trace, layer - 1, None)
    raise ValueError(f"action_layer {action_layer} is not a layer of this critic")
