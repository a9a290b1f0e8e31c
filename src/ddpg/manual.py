"""The actor's and critic's backward passes written out by hand, with a choice of matrix library.

A DDPG MLP needs only the derivatives of `linear`, `relu`, `tanh` and `cat`, so its gradients fit in a
few lines without autograd. What that buys is control over the matrix products: on CPUs where
torch's float32 `mm` goes to a slow BLAS path (MKL on AMD Zen 4 ran ~100 GFLOP/s on one core) oneDNN
does the same products about twice as fast, and autograd cannot be told to use it (see
docs/performance.md).

Every product here is `MatMul`'s y = x·wᵀ (+ b): the forward pass is x·Wᵀ, the gradient into a
layer's input g·W = linear(g, Wᵀ), the gradient of its weight gᵀ·x = linear(gᵀ, xᵀ); the transposes
are views, and both libraries read them without a copy.

Parameter lists are in `module.parameters()` order: [W0, b0, …, W_out, b_out]. `inputs[i]` is the
input of layer i as the forward pass saw it (for the critic's layer `action_layer`, with the action
concatenated), the last entry the input of the output layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensors = list[torch.Tensor]

# oneDNN only for products whose every dimension is at least this large: at [64, 64] it is no faster
# than BLAS and at the thin first and last layers (3 or 1 features) it is slower (docs/BENCHMARKS.md,
# "hand-written backward").
ONEDNN_MIN_SIZE = 128


def onednn_available(device: torch.device) -> bool:
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


def _onednn_linear_eager(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")


# The op `ddpg::onednn_linear`, opaque to torch.compile: inductor's own lowering of
# mkldnn._linear_pointwise assumes a weight layout of its choosing, which gave wrong results with the
# transposed views used here. Defined through torch.library.Library rather than the @custom_op
# decorator, whose Python wrapper cost ~7 µs per call against ~1.6 µs (4 % of a [400, 300] update).
_LIBRARY = torch.library.Library("ddpg", "FRAGMENT")  # FRAGMENT: other ddpg ops may join the namespace
_LIBRARY.define("onednn_linear(Tensor x, Tensor w, Tensor? b) -> Tensor")
_LIBRARY.impl("onednn_linear", _onednn_linear_eager, "CPU")


@torch.library.register_fake("ddpg::onednn_linear")
def _(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return x.new_empty(x.shape[0], w.shape[0])


onednn_linear = torch.ops.ddpg.onednn_linear.default  # x·wᵀ (+ b) by oneDNN


@dataclass(frozen=True)
class MatMul:
    """y = x·wᵀ (+ b) for 2-d x and w: oneDNN for large products when `onednn`, `F.linear` otherwise.

    `opaque` calls oneDNN through the opaque op `ddpg::onednn_linear`, for code under torch.compile;
    `min_size` is the smallest dimension of a product that goes to oneDNN."""

    onednn: bool = False
    opaque: bool = False
    min_size: int = ONEDNN_MIN_SIZE

    def __call__(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        large = min(x.shape[0], x.shape[1], w.shape[0]) >= self.min_size
        if self.onednn and large and x.dtype == torch.float32:
            return (onednn_linear if self.opaque else _onednn_linear_eager)(x, w, b)
        return F.linear(x, w, b)


def _linear_backward(mm: MatMul, g: torch.Tensor, x: torch.Tensor, grads: Tensors) -> None:
    # Appended in reverse order (bias, then weight), as the backward pass walks the layers backwards.
    grads += [g.sum(0), mm(g.t(), x.t())]


def actor_forward(mm: MatMul, params: Tensors, obs: torch.Tensor) -> tuple[torch.Tensor, Tensors]:
    """μ(s) and the input of every layer."""
    inputs = []
    x = obs
    for i in range(0, len(params) - 2, 2):
        inputs.append(x)
        x = F.relu(mm(x, params[i], params[i + 1]))
    inputs.append(x)
    return torch.tanh(mm(x, params[-2], params[-1])), inputs


def actor_backward(
    mm: MatMul, params: Tensors, inputs: Tensors, action: torch.Tensor, grad_action: torch.Tensor
) -> Tensors:
    """dL/dθ_μ from dL/dμ(s): through tanh (1 − μ²), then each layer; none into the observation."""
    g = grad_action * (1.0 - action * action)
    grads: Tensors = []
    for layer in reversed(range(len(inputs))):
        _linear_backward(mm, g, inputs[layer], grads)
        if layer > 0:
            # ReLU passes the gradient where its output (this layer's input) was positive.
            g = mm(g, params[2 * layer].t()) * (inputs[layer] > 0)
    return grads[::-1]


def critic_forward(
    mm: MatMul, params: Tensors, action_layer: int, obs: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, Tensors]:
    """Q(s, a) with shape (batch,), and the input of every layer."""
    inputs = []
    x = obs
    for layer, i in enumerate(range(0, len(params) - 2, 2)):
        if layer == action_layer:
            x = torch.cat([x, action], dim=-1)
        inputs.append(x)
        x = F.relu(mm(x, params[i], params[i + 1]))
    inputs.append(x)
    return mm(x, params[-2], params[-1]).squeeze(-1), inputs


def critic_backward(mm: MatMul, params: Tensors, inputs: Tensors, grad_q: torch.Tensor) -> Tensors:
    """dL/dθ_Q from dL/dQ; none into the observation or the action."""
    g = grad_q[:, None]
    grads: Tensors = []
    for layer in reversed(range(len(inputs))):
        _linear_backward(mm, g, inputs[layer], grads)
        if layer > 0:
            # Only the columns of the previous layer's output: at the action layer the input is
            # [h, a], and the action's share of the gradient is not needed here.
            width = params[2 * layer - 2].shape[0]
            g = mm(g, params[2 * layer][:, :width].t()) * (inputs[layer][:, :width] > 0)
    return grads[::-1]


def critic_action_grad(
    mm: MatMul, params: Tensors, action_layer: int, inputs: Tensors, grad_q: torch.Tensor, action_dim: int
) -> torch.Tensor:
    """dL/da from dL/dQ: back from the output to the layer the action joins, no weight gradients."""
    g = grad_q[:, None]
    for layer in reversed(range(len(inputs))):
        w = params[2 * layer]
        if layer == action_layer:
            return mm(g, w[:, w.shape[1] - action_dim :].t())
        g = mm(g, w.t()) * (inputs[layer] > 0)
    raise ValueError(f"action_layer {action_layer} is not a layer of this critic")
