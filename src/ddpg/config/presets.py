"""Presets: one YAML per environment in the package (`ddpg.presets`), plus `default` and `paper`, or a
YAML file.

An environment with a preset of its own (named by its id) gets that one; any other gets `default`
(`preset_for`). Presets are plain data, flat or nested by section (parse.py reads both); they are
validated only as part of the Config they go into.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ddpg.config.parse import yaml_reason
from ddpg.config.safe_yaml import parse_yaml, read_config_text
from ddpg.config.sections import ConfigError, shown

# Presets that belong to no environment: what an env without a preset of its own gets, and Lillicrap's.
GENERAL_PRESETS = {
    "default": "any env without a preset of its own: TD3, [256, 256], lr 3e-4, batch 256, tau 0.005",
    "paper": "Lillicrap et al. 2016's exact settings (DDPG, batch norm, OU noise)",
}
DEFAULT_PRESET = "default"


def preset_for(env_id: str) -> str:
    """The preset `ddpg train --env ENV_ID` takes without --preset: the env's own, else `default`."""
    return env_id if env_id in preset_names() and env_id not in GENERAL_PRESETS else DEFAULT_PRESET


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("ddpg.presets").iterdir()
        if p.name.endswith(".yaml")
    )


def load_yaml(path: Path | str) -> dict[str, Any]:
    """A config file's mapping: a regular file of at most 1 MiB whose aliases expand to a bounded size
    (safe_yaml.py); anything else is a one-line ConfigError naming the file."""
    path = Path(path)
    data = _parse(read_config_text(path), str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    return data


def _parse(text: str, name: str) -> Any:
    try:
        return parse_yaml(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{name} is not valid YAML ({yaml_reason(e)})") from None


def load_preset(name_or_file: str) -> dict[str, Any]:
    """A preset by name (`paper`, an env id) or a YAML file; returns plain data, not yet validated."""
    if name_or_file.endswith((".yaml", ".yml")) or os.path.lexists(name_or_file):
        return load_yaml(name_or_file)  # a path that is there, even a FIFO or a device: refused by name
    if name_or_file not in preset_names():
        raise ConfigError(
            f"unknown preset '{shown(name_or_file, quote=False)}' "
            f"(known: {', '.join(preset_names())}; or give a YAML file)"
        )
    text = resources.files("ddpg.presets").joinpath(f"{name_or_file}.yaml").read_text()
    return _parse(text, f"preset {name_or_file}")
