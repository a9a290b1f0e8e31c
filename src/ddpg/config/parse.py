"""From plain data (YAML, JSON, `--set`, keyword arguments) to validated sections.

Data comes in two forms, which may be mixed: flat, the form of earlier versions (`tau: 0.005`,
`noise: {sigma: 0.2}`, `env: {track: oval}`), and nested by section (`optimisation: {tau: 0.005}`).
`nest` brings both to the nested form, moving each flat key to its section (`FLAT_KEYS`); keys it does
not know are left where they are, for `build_sections` to refuse by name.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import yaml

from ddpg.config.safe_yaml import parse_yaml
from ddpg.config.sections import (
    ALGO_SECTION_DEFAULTS,
    FLAT_KEYS,
    SECTIONS,
    AlgorithmConfig,
    ConfigError,
    flat_key,
    shown,
)


def _as_mapping(value: Any, name: str) -> dict[str, Any]:
    """A section's data: a mapping, or the section's dataclass (its fields, not copied deeper)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if value is None:  # `optimisation:` with nothing under it in YAML
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def canonical_path(path: list[str]) -> list[str]:
    """A key as a path into the nested form: `tau` → optimisation.tau, `noise.sigma` →
    exploration.noise.sigma, `env.track` → environment.kwargs.track; a section's keys and unknown
    keys unchanged."""
    if path and path[0] in FLAT_KEYS:
        return [*FLAT_KEYS[path[0]], *path[1:]]
    return list(path)


def nest(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flat, nested or mixed config data in the nested form; later keys win over earlier ones.

    The result is a new mapping with new section mappings; values inside them are not copied."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            out.setdefault(key, {}).update(_as_mapping(value, key))
        elif key in FLAT_KEYS:
            section, name = FLAT_KEYS[key]
            out.setdefault(section, {})[name] = value
        else:
            out[key] = value
    return out


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """Nested (or flat) config data in the flat form of earlier versions, keyed by flat keys."""
    flat_of = {path: key for key, path in FLAT_KEYS.items()}
    out: dict[str, Any] = {}
    for key, value in nest(data).items():
        if key in SECTIONS:
            out.update({flat_of.get((key, name), f"{key}.{name}"): v for name, v in value.items()})
        else:
            out[key] = value
    return out


def build_sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """Every section built from `data` (flat, nested or mixed), refusing unknown keys and values of the
    wrong type by name; sections not given get their defaults."""
    data = with_algorithm_defaults(nest(data))
    unknown = sorted((k for k in data if k not in SECTIONS), key=str)
    if unknown:
        raise ConfigError(
            unknown_key(unknown[0], [*FLAT_KEYS, *SECTIONS])
            or f"unknown config key '{shown(unknown[0], quote=False)}' (not a flat key of "
            f"docs/configuration.md, nor a section: {', '.join(SECTIONS)})"
        )
    return {name: _section(data.get(name, {}), cls, name) for name, cls in SECTIONS.items()}


def with_algorithm_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Nested `data` with its algorithm's values (`ALGO_SECTION_DEFAULTS`) for the fields of other
    sections it does not give: `algo: td7` brings TD7's networks and learning rates, while a preset's or
    the user's value still wins."""
    algo = data.get("algorithm", {}).get("algo")
    defaults = ALGO_SECTION_DEFAULTS.get(algo, {}) if isinstance(algo, str) else {}
    return {**data, **{name: {**given, **data.get(name, {})} for name, given in defaults.items()}}


# Names other libraries and papers use, as the words of ours: `learning_rate` suggests actor_lr and
# critic_lr.
_SYNONYMS = {"learning_rate": "lr", "learningrate": "lr", "discount": "gamma", "polyak": "tau"}


def unknown_key(key: Any, known: list[str], prefix: str = "") -> str | None:
    """`unknown config key 'KEY' (did you mean: A, B?)` with the known names nearest to `key` (at most
    three), or None when none is near."""
    if not isinstance(key, str) or len(key) > 100:
        return None
    words = key.lower().replace("-", "_")
    for word, ours in _SYNONYMS.items():
        words = words.replace(word, ours)
    # Names that hold every word of the key and at most one more (lr → actor_lr, critic_lr), then
    # names spelled alike (taux → tau).
    given = set(words.split("_"))
    near = [k for k in known if given <= set(k.split("_")) and len(set(k.split("_")) - given) <= 1]
    near += difflib.get_close_matches(words, known, n=3, cutoff=0.6)
    near = list(dict.fromkeys(n for n in near if n != key))[:3]
    if not near:
        return None
    return f"unknown config key '{prefix}{key}' (did you mean: {', '.join(prefix + n for n in near)}?)"


def _section(data: dict[str, Any], cls: type, section: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ConfigError(
            unknown_key(unknown[0], list(fields), f"{section}.")
            or f"unknown config key '{section}.{shown(unknown[0], quote=False)}' (known: {', '.join(fields)})"
        )
    hints = _hints(cls)
    values = {name: _coerce(value, hints[name], flat_key(fields[name])) for name, value in data.items()}
    if cls is AlgorithmConfig:
        return AlgorithmConfig.of(**values)  # the algorithm's defaults for the switches not given
    return cls(**values)


def from_data(data: Any, cls: type, prefix: str = "") -> Any:
    """A dataclass inside a section (`NoiseConfig`, `Schedule`) from a mapping; errors are named
    `prefix` + field (`noise.sigma`)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields, key=str)
    if unknown:
        raise ConfigError(
            unknown_key(unknown[0], sorted(fields), prefix)
            or f"unknown config key '{prefix}{shown(unknown[0], quote=False)}' "
            f"(known: {', '.join(sorted(fields))})"
        )
    values = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as e:
        if prefix:
            raise ConfigError(f"{prefix}{e}") from None
        raise


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, name)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_data(value, hint, name + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, args))}, got {shown(value)}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {shown(value)}")
        return [_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {shown(value)}")
        return dict(value)
    if hint in _SCALARS:
        problem = _SCALARS[hint](value)
        if problem is not None:
            raise ConfigError(f"{name} must be {problem}, got {shown(value)}")
        return hint(value)
    return value


def _coerce_union(value: Any, args: tuple[Any, ...], name: str) -> Any:
    if value is None and type(None) in args:
        return None
    inner = [a for a in args if a is not type(None)]
    for alternative in inner[:-1]:  # `Literal["auto"] | int`: the first alternative that fits
        try:
            return _coerce(value, alternative, name)
        except ConfigError:
            pass
    return _coerce(value, inner[-1], name)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What is wrong with a value for each scalar type, or None. float.is_integer() is False for inf and
# nan, which int() cannot take.
_SCALARS: dict[type, Callable[[Any], str | None]] = {
    bool: lambda v: None if isinstance(v, bool) else "true or false",
    int: lambda v: None if _number(v) and (isinstance(v, int) or v.is_integer()) else "an integer",
    float: lambda v: "a number" if not _number(v) else None if math.isfinite(v) else "finite",
    str: lambda v: None if isinstance(v, str) else "a string",
}


# ---------------------------------------------------------------------------------------------------
# `--set key=value` overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value parsed as YAML), so `--set tau=1e-3` gives a float."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {shown(text)}")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(
            f"--set {shown(key, quote=False)}: value {shown(raw)} is not valid YAML ({yaml_reason(e)})"
        ) from None
    if isinstance(value, str):
        value = _yaml_number(value)
    return key.strip().split("."), value


def _yaml_number(text: str) -> Any:
    # YAML 1.1 reads "1e-3" as a string; people mean a number.
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text


def yaml_reason(error: yaml.YAMLError) -> str:
    return str(getattr(error, "problem", None) or error).splitlines()[0]


def set_value(data: dict[str, Any], path: list[str], value: Any, key: str | None = None) -> None:
    """Set a flat (`tau`, `noise.sigma`) or section (`optimisation.tau`) key in nested data."""
    node = data
    full = canonical_path(path)
    shift = len(full) - len(path)  # a flat key stands for two parts: section and field
    for i, part in enumerate(full[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            name = path[i - shift] if i >= shift else part
            given = shown(key or ".".join(path), quote=False)
            raise ConfigError(f"--set {given}: '{shown(name, quote=False)}' is not a section")
        node = child
    node[full[-1]] = value


def apply_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` strings to plain config data (flat or nested); returns it nested."""
    data = nest(copy.deepcopy(dict(data)))
    for text in overrides:
        path, value = parse_override(text)
        set_value(data, path, value, key=".".join(path))
    return data
