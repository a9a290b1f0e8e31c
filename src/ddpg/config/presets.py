"""Presets: one YAML per environment in the package (`ddpg.presets`), plus `paper`, or a YAML file.

Presets are plain data, flat or nested by section (parse.py reads both); they are validated only as
part of the Config they go into.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ddpg.config.parse import yaml_reason
from ddpg.config.sections import ConfigError


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("ddpg.presets").iterdir()
        if p.name.endswith(".yaml")
    )


def load_yaml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML ({yaml_reason(e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    return data


def load_preset(name_or_file: str) -> dict[str, Any]:
    """A preset by name (`paper`, an env id) or a YAML file; returns plain data, not yet validated."""
    if name_or_file.endswith((".yaml", ".yml")) or Path(name_or_file).is_file():
        return load_yaml(name_or_file)
    if name_or_file not in preset_names():
        raise ConfigError(
            f"unknown preset '{name_or_file}' (known: {', '.join(preset_names())}; or give a YAML file)"
        )
    return yaml.safe_load(resources.files("ddpg.presets").joinpath(f"{name_or_file}.yaml").read_text())
