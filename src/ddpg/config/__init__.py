"""One validated configuration, in sections: dataclasses, presets, `--set` overrides.

A `Config` is nine sections (sections.py), each a frozen dataclass that validates its own fields;
`Config` itself checks what spans sections. So a `Config` that exists is a `Config` that is valid, and
every error raised here is a `ConfigError` whose message names the offending field, so the command line
can print it as one line.

Compatibility with the flat config of earlier versions: every field has a flat key (its own name, but
`env_id` and `env` for `environment.id` and `environment.kwargs`) that `Config(...)`, `from_dict`,
`--set`, presets and old config.yaml files and checkpoints may use, and that reads back as a read-only
alias: `config.tau` is `config.optimisation.tau`. The library itself reads the sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ddpg.config.parse import (
    apply_overrides,
    build_sections,
    flatten,
    from_data,
    nest,
    parse_override,
    set_value,
)
from ddpg.config.presets import (
    DEFAULT_PRESET,
    GENERAL_PRESETS,
    load_preset,
    load_yaml,
    preset_for,
    preset_names,
)
from ddpg.config.sections import (
    ALGO_DEFAULTS,
    ALGO_SECTION_DEFAULTS,
    FLAT_KEYS,
    SECTIONS,
    AlgorithmConfig,
    ConfigError,
    EnvironmentConfig,
    ExplorationConfig,
    LoggingConfig,
    LoopConfig,
    NetworksConfig,
    NoiseConfig,
    ObservationConfig,
    OptimisationConfig,
    ReplayConfig,
    Schedule,
    check,
    min_frame_size,
)

__all__ = [
    "ALGO_DEFAULTS",
    "DEFAULT_PRESET",
    "FLAT_KEYS",
    "GENERAL_PRESETS",
    "SECTIONS",
    "AlgorithmConfig",
    "Config",
    "ConfigError",
    "EnvironmentConfig",
    "ExplorationConfig",
    "LoggingConfig",
    "LoopConfig",
    "NetworksConfig",
    "NoiseConfig",
    "ObservationConfig",
    "OptimisationConfig",
    "ReplayConfig",
    "Schedule",
    "apply_overrides",
    "config_yaml",
    "flatten",
    "from_dict",
    "load_config",
    "load_preset",
    "load_yaml",
    "min_frame_size",
    "nest",
    "parse_override",
    "preset_for",
    "preset_names",
    "resolve",
]


@dataclass(frozen=True, init=False)
class Config:
    """Everything a run depends on, in sections. Field names follow the paper and Stable-Baselines3.

    `Config(**values)` takes sections (dataclasses or mappings) and flat keys, mixed, later ones
    winning: `Config(total_steps=10_000, tau=0.005)` or `Config(optimisation={"tau": 0.005})`. Switches
    of `algorithm` not given take the algorithm's defaults. Flat keys also read back, read-only:
    `config.tau` is `config.optimisation.tau` (`FLAT_KEYS` lists them).
    """

    environment: EnvironmentConfig
    loop: LoopConfig
    algorithm: AlgorithmConfig
    networks: NetworksConfig
    optimisation: OptimisationConfig
    replay: ReplayConfig
    exploration: ExplorationConfig
    observation: ObservationConfig
    logging: LoggingConfig

    def __init__(self, **values: Any) -> None:
        for name, section in build_sections(values).items():
            object.__setattr__(self, name, section)  # frozen: set once, here
        self._check_across_sections()

    def _check_across_sections(self) -> None:
        env, loop, net, opt = self.environment, self.loop, self.networks, self.optimisation
        check(
            opt.batch_size <= self.replay.buffer_size,
            "batch_size",
            f"({opt.batch_size}) must not exceed buffer_size ({self.replay.buffer_size})",
        )
        check(
            loop.total_steps % env.n_envs == 0,
            "total_steps",
            f"({loop.total_steps}) must be a multiple of n_envs ({env.n_envs})",
        )
        check(
            env.n_envs == 1 or not self.algorithm.policy_checkpointing,
            "policy_checkpoints",
            f"needs n_envs: 1 (an assessment holds the actor fixed for whole episodes, which the "
            f"{env.n_envs} envs would begin and end at different steps); set policy_checkpoints: false "
            "or n_envs: 1",
        )
        for ok, name, why in (
            (
                not self.algorithm.policy_checkpointing,
                "policy_checkpoints",
                "assess one actor's whole episodes",
            ),
            (not self.observation.obs_norm, "obs_norm", "keep running statistics the actors would need too"),
        ):
            check(
                loop.actors == 0 or ok,
                name,
                f"is not supported with actors ({loop.actors}): it would {why}; "
                f"set {name}: false or actors: 0",
            )
        min_size = min_frame_size(net.conv_kernel, net.conv_strides)
        frame_size = self.observation.frame_size
        check(
            frame_size is None or frame_size >= min_size,
            "frame_size",
            f"must be >= {min_size} pixels for the encoder ({len(net.conv_strides)} conv layers, "
            f"kernel {net.conv_kernel}, strides {net.conv_strides})",
        )
        algo = self.algorithm
        check(
            not (algo.lap and self.replay.prioritized),
            "prioritized",
            "cannot be combined with lap, td7's own prioritized replay: set one of them",
        )
        if algo.algo == "td7":
            check(not self.observation.pixels, "pixels", "is not supported by td7 yet: it learns from states")
            for name in ("batch_norm", "layer_norm"):
                check(not getattr(net, name), name, "is not part of td7's networks")
            check(net.dropout == 0, "dropout", "is not part of td7's networks")

    def __getattr__(self, name: str) -> Any:
        # Called only when `name` is not an attribute: the read-only flat aliases.
        if name not in FLAT_KEYS:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        section, field_name = FLAT_KEYS[name]
        return getattr(getattr(self, section), field_name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *FLAT_KEYS})

    @property
    def critic_sizes(self) -> list[int]:
        return self.networks.critic_sizes

    def to_dict(self) -> dict[str, Any]:
        """The nested form, section by section: what config.yaml and checkpoints hold."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` (flat keys or sections, as `Config` takes them). A new `algo` brings its
        own defaults for the switches not also changed here."""
        data = self.to_dict()
        given = nest(changes)
        algorithm = given.get("algorithm")
        if isinstance(algorithm, dict) and algorithm.get("algo", self.algorithm.algo) != self.algorithm.algo:
            data["algorithm"] = {}
            _forget_algorithm_defaults(data, self.algorithm.algo)
        for key, value in given.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value  # not a section: Config names it
        return Config(**data)


def _forget_algorithm_defaults(data: dict[str, Any], algo: str) -> None:
    """Drop from nested `data` the fields of other sections that hold `algo`'s default (its own, or the
    section's where it has none), so that another algorithm's defaults can take their place."""
    for defaults in ALGO_SECTION_DEFAULTS.values():
        for section, names in defaults.items():
            own = ALGO_SECTION_DEFAULTS.get(algo, {}).get(section, {})
            for name in names:
                default = own[name] if name in own else getattr(SECTIONS[section](), name)
                if data[section].get(name, default) == default:
                    data[section].pop(name, None)


def from_dict(data: dict[str, Any], cls: type = Config, prefix: str = "") -> Any:
    """Build `cls` (a Config by default, from flat, nested or mixed data) from a mapping, refusing
    unknown keys and values of the wrong type by name."""
    if cls is not Config:
        return from_data(data, cls, prefix)
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping, got {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"unknown config key '{key}'")
    return Config(**data)


def resolve(
    env_id: str | None = None, preset: str | None = None, overrides: Sequence[str] = (), **fields: Any
) -> Config:
    """The one way a Config is built from user input: preset (when not given, the env's own, or
    `default` for an env without one), then explicit fields (`--steps`, `--seed`, `--algo`), then `--set`
    overrides, validated once at the end. The dataclasses' own defaults (the paper's values, `Config()`)
    lie under every preset."""
    data = nest(load_preset(preset_for(env_id or EnvironmentConfig.id) if preset is None else preset))
    if env_id is not None:
        set_value(data, ["env_id"], env_id)
    for key, value in fields.items():
        if value is not None:
            set_value(data, [key], value)
    return from_dict(apply_overrides(data, list(overrides)))


def config_yaml(config: Config) -> str:
    """The text of a run's config.yaml, nested by section, which `load_config` reads back to an equal
    Config."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def load_config(path: Path) -> Config:
    """A config.yaml, of this version (nested) or an earlier one (flat)."""
    return from_dict(load_yaml(path))
