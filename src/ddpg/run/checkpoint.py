"""Checkpoints that cannot run code: safetensors for tensors, JSON for everything else.

A checkpoint is a directory written under a temporary name and renamed into place, so a kill during a
write leaves the previous checkpoint whole. `manifest.json` lists every file's size and SHA-256; loading
checks them before reading a byte of content. Nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ddpg.files import atomic_directory

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, from a newer format, or does not fit; the message says which."""


# ---------------------------------------------------------------------------------------------------
# Tensors of modules and optimisers, flattened to one safetensors file plus JSON.


def module_tensors(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": t.detach().cpu().contiguous()
        for name, m in modules.items()
        for key, t in m.state_dict().items()
    }


def section(entries: dict[str, Any], name: str) -> dict[str, Any]:
    """The entries saved under `name.`, keyed by the rest of their names."""
    prefix = f"{name}."
    return {k[len(prefix) :]: v for k, v in entries.items() if k.startswith(prefix)}


def load_modules(modules: dict[str, nn.Module], tensors: dict[str, torch.Tensor]) -> None:
    for name, module in modules.items():
        state = section(tensors, name)
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise CheckpointError(
                f"the checkpoint's {name} does not fit this network: "
                f"{first[1].strip() if len(first) > 1 else first[0]}"
            ) from None


def optimizer_state(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimiser states as (tensors, JSON-able data)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        state = opt.state_dict()
        entries: dict[str, dict[str, Any]] = {}
        for pid, pstate in state["state"].items():
            for key, value in pstate.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
                else:
                    entries.setdefault(str(pid), {})[key] = value
        meta[name] = {
            "param_groups": state["param_groups"],
            "scalars": entries,
            "ids": sorted(state["state"]),
        }
    return tensors, meta


def load_optimizers(
    optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    for name, opt in optimizers.items():
        try:
            saved = meta[name]
            state: dict[int, dict[str, Any]] = {}
            for pid in saved["ids"]:
                state[pid] = section(tensors, f"{name}.{pid}")
                state[pid].update(saved["scalars"].get(str(pid), {}))
            opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(
                f"the checkpoint's {name} state does not fit this optimiser ({e})"
            ) from None


# ---------------------------------------------------------------------------------------------------
# Atomic directories and the manifest.


def write_checkpoint(
    directory: Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    extra: Callable[[Path], None] | None = None,
) -> None:
    """Write `model.safetensors`, `meta.json` (and whatever `extra` adds) atomically into `directory`."""

    def write(tmp: Path) -> None:
        save_tensors(tensors, tmp / "model.safetensors")
        (tmp / "meta.json").write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=1))
        if extra is not None:
            extra(tmp)
        write_manifest(tmp)

    atomic_directory(directory, write)


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' `save_file`, whose I/O errors (a full disk) raise as the OSError they are."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(directory: Path) -> None:
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    (directory / MANIFEST).write_text(
        json.dumps({"format_version": FORMAT_VERSION, "files": files}, indent=1)
    )


def verify(directory: Path, names: Iterable[str] | None = None) -> None:
    """Check the manifest's version, then the size and SHA-256 of `names` (default: every file).

    Readers verify just the files they are about to read: loading weights need not hash the replay
    buffer, and a resume hashes each file once."""
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint at {directory}")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = {name: (int(e["bytes"]), str(e["sha256"])) for name, e in manifest.get("files", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # ValueError covers bytes that are not UTF-8 or not JSON: a manifest that is not one.
        raise CheckpointError(f"checkpoint {directory} has no readable {MANIFEST} ({e})") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format version {version}; this ddpg reads up to "
            f"{FORMAT_VERSION} — upgrade ddpg"
        )
    for name in files if names is None else names:
        if name not in files:
            raise CheckpointError(f"checkpoint {directory} does not list {name} in its {MANIFEST}")
        size, sha256 = files[name]
        path = directory / name
        if Path(name).name != name:
            raise CheckpointError(f"checkpoint {directory} lists {name!r}, outside the checkpoint")
        if not path.is_file():
            raise CheckpointError(f"checkpoint file {path} is missing")
        if path.stat().st_size != size:
            raise CheckpointError(
                f"checkpoint file {path} has {path.stat().st_size} bytes, the manifest "
                f"says {size}: it is truncated or was replaced"
            )
        if _sha256(path) != sha256:
            raise CheckpointError(f"checkpoint file {path} fails its checksum: it is damaged or was replaced")


def read_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify, then load tensors and metadata. Never unpickles."""
    verify(directory, ("model.safetensors", "meta.json"))
    try:
        tensors = load_file(str(directory / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"cannot read {directory / 'model.safetensors'}: {e}") from None
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as e:  # ValueError: not UTF-8, not JSON
        raise CheckpointError(f"cannot read {directory / 'meta.json'}: {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"cannot read {directory / 'meta.json'}: not a JSON object")
    return tensors, meta
