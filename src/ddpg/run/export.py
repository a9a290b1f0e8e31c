"""The deterministic policy out of the library, for a robot or a controller: one file that maps the raw
observation, as the environment gives it, to the action in the environment's units.

Everything `DDPG.act` does is inside: the `obs_norm` rescaling (in float64, as `act` does it), the
shipped policy (`DDPG.shipped_policy`, an encoder included, with batch norm and dropout in eval mode) and
the rescale of its tanh output from [−1, 1] to [low, high]. Pixel policies take the stacked uint8 frames
(k·C, H, W) the wrapped environment gives. Three formats:

- `onnx`: one input `obs` (batch, *obs_shape), one output `action` (batch, *action_shape), a dynamic batch
  axis, opset 18, written by torch's exporter (which needs `onnxscript`);
- `torchscript`: the same module, traced, for `torch.jit.load`;
- `npz`: the weights as arrays and a JSON description of the layers (key `description`), for a runtime
  that has neither (numpy, C); docs/deploy.md holds a numpy forward that reads it.

Each file is written whole or not at all.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import numpy as np
import torch
from torch import nn

from ddpg.agent.networks import Actor, ConvEncoder, StopGradient
from ddpg.agent.normalization import EPSILON
from ddpg.agent.sale import AVG_L1_EPS, NoEncoder, SaleEncoder, SalePolicy
from ddpg.files import atomic_write

if TYPE_CHECKING:
    from ddpg.run.agent import DDPG

__all__ = ["FORMATS", "ExportError", "ExportedPolicy", "describe", "export", "export_format"]

FORMATS = ("onnx", "torchscript", "npz")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".npz": "npz"}
OPSET = 18  # onnxruntime has run it since 1.14; torch's exporter writes nothing older
NPZ_VERSION = 1
ONNX_PACKAGES = ("onnx", "onnxscript")


class ExportError(ValueError):
    """The policy cannot be written as asked; the message says what to do instead."""


def export_format(path: Path, format: str | None = None) -> str:
    """The format to write `path` in: `format`, or the one its suffix names (.onnx, .pt or .ts, .npz).
    Refuses a format whose packages are missing, before anything is loaded or written."""
    fmt = format or SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ExportError(
            f"name the format (--format {'|'.join(FORMATS)}): {path} does not end in {', '.join(SUFFIXES)}"
        )
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    missing = [p for p in ONNX_PACKAGES if fmt == "onnx" and importlib.util.find_spec(p) is None]
    if missing:
        raise ExportError(f"--format onnx needs {' and '.join(missing)}: pip install 'ddpg[export]'")
    return fmt


class ExportedPolicy(nn.Module):
    """Raw observations (batch, *obs_shape) → actions (batch, *action_shape) in the env's units: `act`'s
    computation for a batch, as one module. The policy is a copy, in eval mode."""

    mean: torch.Tensor | None
    std: torch.Tensor | None
    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, agent: DDPG) -> None:
        super().__init__()
        self.policy = copy.deepcopy(agent.shipped_policy()).cpu().eval().requires_grad_(False)
        norm = agent.obs_norm
        self.clip = norm.clip if norm is not None else None
        self.register_buffer("mean", torch.tensor(norm.mean) if norm else None)
        self.register_buffer("std", torch.tensor(np.sqrt(norm.var + EPSILON)) if norm else None)
        self.register_buffer("low", torch.tensor(agent.scale.low))
        self.register_buffer("high", torch.tensor(agent.scale.high))
        self.action_shape = tuple(agent.action_shape)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.clip is not None and self.mean is not None and self.std is not None:
            x = ((obs.double() - self.mean) / self.std).clamp(-self.clip, self.clip).float()
        else:
            x = obs.float()  # pixels too: the encoder scales the frames' 0..255 to [0, 1]
        action = self.policy(x).to(self.low.dtype)
        action = self.low + (action + 1.0) * 0.5 * (self.high - self.low)  # ActionScale.to_env
        return action.reshape(obs.shape[0], *self.action_shape)


def export(agent: DDPG, path: Path, format: str | None = None) -> Path:
    """Write `agent`'s deterministic policy to `path` (see the module's docstring); returns `path`."""
    path = Path(path)
    fmt = export_format(path, format)
    module = ExportedPolicy(agent).eval()
    info = _info(agent)
    with torch.no_grad(), _quiet_torch():
        data = {"onnx": _onnx, "torchscript": _torchscript, "npz": _npz}[fmt](module, agent, info)
    atomic_write(path, data)
    return path


@contextmanager
def _quiet_torch() -> Iterator[None]:
    # torch's exporters warn about their own internals and deprecations (and log missing torchvision
    # ops): nothing the user can act on. Other warnings (a trace that may not generalise) still show.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
            yield
    finally:
        logger.setLevel(level)


def _info(agent: DDPG) -> dict[str, Any]:
    """What a deployment needs besides the layers: shapes and dtypes, the action bounds, and how the
    environment's observations were made (for pixels: resize, grayscale, frame stack, action repeat)."""
    c = agent.config
    return {
        "env_id": c.environment.id,
        "step": agent.state.step,
        "obs_shape": list(agent.obs_shape),
        "obs_dtype": str(agent.env.observation_space.dtype),
        "action_shape": list(agent.action_shape),
        "action_dtype": str(agent.scale.low.dtype),
        "action_low": agent.scale.low.tolist(),
        "action_high": agent.scale.high.tolist(),
        "observation": {
            "pixels": len(agent.obs_shape) == 3,
            "frame_size": c.observation.frame_size,
            "grayscale": c.observation.grayscale,
            "frame_stack": c.observation.frame_stack,
            "action_repeat": c.observation.action_repeat,
        },
    }


def _example(agent: DDPG) -> torch.Tensor:
    # Batch 2: an exporter specialises a batch of 1, which would lose the dynamic batch axis.
    dtype = agent.env.observation_space.dtype
    return torch.from_numpy(np.zeros((2, *agent.obs_shape), dtype=dtype))


def _onnx(module: ExportedPolicy, agent: DDPG, info: dict[str, Any]) -> bytes:
    program = torch.onnx.export(
        module,
        (_example(agent),),
        dynamo=True,
        opset_version=OPSET,
        input_names=["obs"],
        output_names=["action"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    assert program is not None
    model = program.model_proto
    model.metadata_props.add(key="ddpg", value=json.dumps(info))
    return bytes(model.SerializeToString())


def _torchscript(module: ExportedPolicy, agent: DDPG, info: dict[str, Any]) -> bytes:
    traced = torch.jit.trace(module, _example(agent))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={"ddpg.json": json.dumps(info)})
    return buffer.getvalue()


def _npz(module: ExportedPolicy, agent: DDPG, info: dict[str, Any]) -> bytes:
    layers, arrays = describe(module)
    description = json.dumps({"format": "ddpg-policy", "version": NPZ_VERSION, **info, "layers": layers})
    buffer = io.BytesIO()
    np.savez(buffer, description=np.array(description), **arrays)  # type: ignore[arg-type]  # names, not options
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------
# The npz description: the policy as a list of layers, each with its arrays named "<index>.<name>".


def describe(module: ExportedPolicy) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The layers of `module` in order, and their arrays. A module it cannot describe exactly (one whose
    forward is not a chain of known layers) is refused, naming it."""
    steps: list[tuple[dict[str, Any], dict[str, torch.Tensor]]] = []
    if module.clip is not None and module.mean is not None and module.std is not None:
        steps.append(({"op": "normalize", "clip": module.clip}, {"mean": module.mean, "std": module.std}))
    else:
        steps.append(({"op": "float32"}, {}))
    steps += _steps(module.policy)
    steps.append(({"op": "rescale"}, {"low": module.low, "high": module.high}))
    layers, tensors = _chain(steps)
    return layers, {name: t.detach().cpu().numpy() for name, t in tensors.items()}


Step = tuple[dict[str, Any], dict[str, torch.Tensor]]


def _chain(steps: list[Step]) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """Layers in order, each step's arrays renamed "<index>.<name>"."""
    layers = [layer for layer, _ in steps]
    return layers, {f"{i}.{name}": t for i, (_, tensors) in enumerate(steps) for name, t in tensors.items()}


def _concat(*branches: list[Step]) -> Step:
    """Each branch a chain applied to the same input, their outputs joined along the last axis; a
    branch's arrays are named "<branch>.<index>.<name>" under the concat's own index."""
    chains = [_chain(branch) for branch in branches]
    tensors = {f"{b}.{name}": t for b, (_, named) in enumerate(chains) for name, t in named.items()}
    return {"op": "concat", "branches": [layers for layers, _ in chains]}, tensors


def _sale_policy(m: SalePolicy) -> list[Step]:
    """TD7's μ(s, z_s): [AvgL1Norm(Linear(s)), z_s] joined, then the actor's layers; z_s = AvgL1Norm(f(s))."""
    norm: Step = ({"op": "avg_l1_norm", "eps": AVG_L1_EPS}, {})
    own = [*_steps(m.actor.input), norm]
    if _exactly(m.encoder, SaleEncoder):
        first = [_concat(own, [*_steps(m.encoder.state), norm])]
    elif _exactly(m.encoder, NoEncoder):  # without SALE z_s is empty
        first = own
    else:
        first = _steps(m.encoder)  # refused, naming it
    return [*first, *_steps(m.actor.hidden), *_steps(m.actor.out), ({"op": "tanh"}, {})]


M = TypeVar("M", bound=nn.Module)


def _exactly(m: nn.Module, kind: type[M]) -> TypeGuard[M]:
    # Exact types: a subclass may compute something else in its forward.
    return type(m) is kind


def _steps(m: nn.Module) -> list[Step]:
    if _exactly(m, Actor):
        return [
            *_steps(m.encoder),
            *_steps(m.input_norm),
            *_steps(m.hidden),
            *_steps(m.out),
            ({"op": "tanh"}, {}),
        ]
    if _exactly(m, SalePolicy):
        return _sale_policy(m)
    if _exactly(m, ConvEncoder):
        return [({"op": "divide", "value": 255.0}, {}), *_steps(m.convs)]
    if _exactly(m, StopGradient):
        return _steps(m.module)
    if _exactly(m, nn.Sequential):
        return [step for child in m for step in _steps(child)]
    if _exactly(m, nn.Identity) or _exactly(m, nn.Dropout):  # dropout is the identity in eval mode
        return []
    if _exactly(m, nn.ReLU) or _exactly(m, nn.Tanh):
        return [({"op": type(m).__name__.lower()}, {})]
    if _exactly(m, nn.ELU):
        return [({"op": "elu", "alpha": m.alpha}, {})]
    if _exactly(m, nn.Flatten) and (m.start_dim, m.end_dim) == (1, -1):
        return [({"op": "flatten"}, {})]
    step = _parametric(m)
    if step is None:
        raise ExportError(
            f"the npz format cannot describe the policy's {type(m).__name__} layer; "
            "export it as onnx or torchscript"
        )
    return [step]


def _parametric(m: nn.Module) -> Step | None:
    """Linear, conv, layer norm and batch norm (eval mode) layers as the npz forward computes them."""
    if _exactly(m, nn.Linear):
        return {"op": "linear"}, {"weight": m.weight, "bias": _bias(m.bias, m.out_features)}
    if _exactly(m, nn.Conv2d):
        if m.padding not in ((0, 0), "valid") or m.dilation != (1, 1) or m.groups != 1:
            return None
        return {"op": "conv2d", "stride": list(m.stride)}, {
            "weight": m.weight,
            "bias": _bias(m.bias, m.out_channels),
        }
    if _exactly(m, nn.LayerNorm):
        if len(m.normalized_shape) != 1:
            return None
        (n,) = m.normalized_shape
        weight = m.weight if m.weight is not None else torch.ones(n)
        return {"op": "layer_norm", "eps": m.eps}, {"weight": weight, "bias": _bias(m.bias, n)}
    if _exactly(m, nn.BatchNorm1d):
        if m.running_mean is None or m.running_var is None:
            return None
        n = m.num_features
        weight = m.weight if m.weight is not None else torch.ones(n)
        stats = {"mean": m.running_mean, "var": m.running_var}
        return {"op": "batch_norm", "eps": m.eps}, {**stats, "weight": weight, "bias": _bias(m.bias, n)}
    return None


def _bias(bias: torch.Tensor | None, n: int) -> torch.Tensor:
    return bias if bias is not None else torch.zeros(n)
