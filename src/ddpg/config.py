"""One validated configuration: dataclasses, presets, `--set` overrides.

Every error raised here is a `ConfigError` whose message names the offending field, so the command
line can print it as one line. Validation happens once, in `Config.__post_init__` and its sections'
`__post_init__`, so a `Config` that exists is a `Config` that is valid.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


ScheduleKind = Literal["constant", "linear", "exponential"]
ScheduleUnit = Literal["step", "episode"]


@dataclass(frozen=True)
class Schedule:
    """A multiplier on a base value over time: 1 at t = 0.

    `linear` goes from 1 to `final` over `duration` units and stays there; `exponential` multiplies by
    `rate` each unit (seed 001's `noise_decay ** episode`, `alpha_decay`) and never drops below `final`.
    """

    kind: ScheduleKind = "constant"
    unit: ScheduleUnit = "step"
    final: float = 0.0
    duration: int = 1
    rate: float = 1.0

    def __post_init__(self) -> None:
        _check(self.final >= 0, "final", "must be >= 0")
        _check(self.duration >= 1, "duration", "must be >= 1")
        _check(0 < self.rate <= 1, "rate", "must be in (0, 1]")


@dataclass(frozen=True)
class NoiseConfig:
    """Exploration noise added to the actor's action, in units of half the action range."""

    kind: Literal["ou", "gaussian", "none"] = "gaussian"
    sigma: float = 0.1
    theta: float = 0.15
    mu: float = 0.0
    dt: float = 1.0
    schedule: Schedule = field(default_factory=Schedule)

    def __post_init__(self) -> None:
        _check(self.sigma >= 0, "sigma", "must be >= 0")
        _check(self.theta > 0, "theta", "must be > 0")
        _check(self.dt > 0, "dt", "must be > 0")


@dataclass(frozen=True)
class Config:
    """Everything a run depends on. Field names follow the paper and Stable-Baselines3."""

    # Environment
    env_id: str = "Pendulum-v1"
    env: dict[str, Any] = field(default_factory=dict)  # keyword arguments for the env's constructor
    max_episode_steps: int | None = None  # overrides the env's own time limit
    # Run
    seed: int = 0
    total_steps: int = 20_000
    device: str = "cpu"
    compile: Literal["auto", True, False] = (
        "auto"  # fast update (ddpg.agent.fast.update): auto compiles long runs only
    )
    # Networks
    hidden_sizes: list[int] = field(default_factory=lambda: [400, 300])
    critic_hidden_sizes: list[int] | None = None  # None: same as hidden_sizes
    action_layer: int = 1  # hidden layer the action enters the critic at: 0 = with the state
    batch_norm: bool = False
    dropout: float = 0.0
    layer_norm: bool = False  # LayerNorm after every hidden linear layer, before its ReLU (Baselines)
    # Rescale state observations by their running mean and std (Baselines, SB3's VecNormalize)
    obs_norm: bool = False
    obs_norm_clip: float = 5.0  # rescaled observations are clipped to ±this
    # Optimisation
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    actor_lr_schedule: Schedule = field(default_factory=Schedule)
    critic_lr_schedule: Schedule = field(default_factory=Schedule)
    actor_weight_decay: float = 0.0
    critic_weight_decay: float = 0.0
    grad_clip_norm: float | None = None
    gamma: float = 0.99
    tau: float = 0.001
    batch_size: int = 64
    buffer_size: int = 1_000_000
    # Loop
    learning_starts: int = 1000  # steps of uniform random actions before the first update
    train_freq: int = 1  # environment steps between rounds of updates
    gradient_steps: int = 1  # updates per round
    n_envs: int = 1  # envs stepped together: each step of the loop adds n_envs transitions
    vectorization: Literal["sync", "async"] = "async"  # n_envs > 1: a subprocess per env, or in turn here
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    # Evaluation and logging
    eval_every: int = 2000
    eval_episodes: int = 5
    log_every: int = 100  # updates between rows of updates.csv
    checkpoint_every: int | None = None  # steps; None: only at the end
    keep_checkpoints: int = 2  # most recent step checkpoints kept in checkpoints/
    video: bool = True  # record the final evaluation's first episode to videos/final.mp4
    progress: bool = True
    on_nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/inf observation or reward: stop, or skip it
    tensorboard: bool = True  # TensorBoard events beside the CSVs, when the package is installed
    video_every: int = 0  # evaluations between videos/step_N.mp4 (when video is on); 0: only the final
    # Pixels: pixel envs (uint8 (H, W, C) observations) are detected; `pixels` renders a state env
    pixels: bool = False  # observe env.render() ("rgb_array") instead of the state
    frame_size: int | None = None  # resize frames to frame_size x frame_size; None: the env's (64 rendered)
    grayscale: bool = False
    frame_stack: int = 3  # frames per observation (paper: 3)
    action_repeat: int = 1  # env steps per action, rewards summed (paper: 3 from pixels)
    share_encoder: bool = False  # the actor uses the critic's encoder, its gradient stopped there
    conv_channels: list[int] = field(default_factory=lambda: [32, 32, 32])  # paper: 3 layers of 32
    conv_kernel: int = 3
    conv_strides: list[int] = field(default_factory=lambda: [2, 2, 2])
    encoder_features: int = 0  # >0: conv output → Linear → LayerNorm → tanh of this size; 0: paper
    # Algorithm (docs/algorithms.md). `algo` is a default layer: a switch left at None takes the
    # algorithm's value from ALGO_DEFAULTS, so `algo: td3` is TD3 and each piece can still be ablated.
    algo: Literal["ddpg", "td3"] = "ddpg"
    twin_critics: bool | None = None  # two critics, the minimum in the target (TD3)
    target_policy_noise: float | None = None  # σ of the smoothing noise on μ'(s'), normalised units
    target_noise_clip: float | None = None  # the smoothing noise is clipped to [-c, c]
    policy_delay: int | None = None  # critic updates per actor and target update
    prioritized: bool = False  # proportional prioritized replay (Schaul et al. 2016)
    per_alpha: float = 0.6  # priority exponent: 0 is uniform
    per_beta0: float = 0.4  # importance-weight exponent at step 0, annealed to 1 at total_steps
    per_eps: float = 1e-6  # added to |TD error| so no transition gets priority 0
    n_step: int = 1  # transitions summarise up to n rewards; episode ends stop the window

    def __post_init__(self) -> None:
        _check(bool(self.env_id), "env_id", "must not be empty")
        _check(
            self.max_episode_steps is None or self.max_episode_steps >= 1, "max_episode_steps", "must be >= 1"
        )
        _check(0 <= self.seed < 2**63, "seed", "must be in [0, 2**63)")  # torch seeds are 64-bit
        _check(self.total_steps >= 1, "total_steps", "must be >= 1")
        _check(
            self.compile == "auto" or isinstance(self.compile, bool), "compile", "must be auto, true or false"
        )
        _check(
            len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
            "hidden_sizes",
            "must be a non-empty list of positive sizes",
        )
        critic_sizes = self.critic_sizes
        _check(min(critic_sizes, default=0) >= 1, "critic_hidden_sizes", "must be positive sizes")
        _check(
            0 <= self.action_layer <= len(critic_sizes) - 1,
            "action_layer",
            f"must be in [0, {len(critic_sizes) - 1}] for {len(critic_sizes)} critic hidden layers",
        )
        _check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        _check(not (self.batch_norm and self.layer_norm), "layer_norm", "cannot be combined with batch_norm")
        _check(self.obs_norm_clip > 0, "obs_norm_clip", "must be > 0")
        _check(
            not (self.obs_norm and self.pixels),
            "obs_norm",
            "is for state observations; pixel frames are scaled to [0, 1] by the encoder",
        )
        _check(self.actor_lr > 0, "actor_lr", "must be > 0")
        _check(self.critic_lr > 0, "critic_lr", "must be > 0")
        _check(self.actor_weight_decay >= 0, "actor_weight_decay", "must be >= 0")
        _check(self.critic_weight_decay >= 0, "critic_weight_decay", "must be >= 0")
        _check(self.grad_clip_norm is None or self.grad_clip_norm > 0, "grad_clip_norm", "must be > 0")
        _check(0 <= self.gamma <= 1, "gamma", "must be in [0, 1]")
        _check(0 < self.tau <= 1, "tau", "must be in (0, 1]")
        _check(self.batch_size >= 1, "batch_size", "must be >= 1")
        _check(self.buffer_size >= 1, "buffer_size", "must be >= 1")
        _check(
            self.batch_size <= self.buffer_size,
            "batch_size",
            f"({self.batch_size}) must not exceed buffer_size ({self.buffer_size})",
        )
        _check(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        _check(self.train_freq >= 1, "train_freq", "must be >= 1")
        _check(self.gradient_steps >= 1, "gradient_steps", "must be >= 1")
        _check(self.n_envs >= 1, "n_envs", "must be >= 1")
        _check(
            self.total_steps % self.n_envs == 0,
            "total_steps",
            f"({self.total_steps}) must be a multiple of n_envs ({self.n_envs})",
        )
        _check(self.eval_every >= 1, "eval_every", "must be >= 1")
        _check(self.eval_episodes >= 0, "eval_episodes", "must be >= 0")
        _check(self.log_every >= 1, "log_every", "must be >= 1")
        _check(
            self.checkpoint_every is None or self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1"
        )
        _check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        _check(self.on_nonfinite in ("stop", "skip"), "on_nonfinite", "must be stop or skip")
        _check(self.video_every >= 0, "video_every", "must be >= 0")
        _check(self.frame_stack >= 1, "frame_stack", "must be >= 1")
        _check(self.action_repeat >= 1, "action_repeat", "must be >= 1")
        _check(
            len(self.conv_channels) >= 1 and min(self.conv_channels) >= 1,
            "conv_channels",
            "must be a non-empty list of positive sizes",
        )
        _check(self.conv_kernel >= 1, "conv_kernel", "must be >= 1")
        _check(
            len(self.conv_strides) == len(self.conv_channels) and min(self.conv_strides) >= 1,
            "conv_strides",
            f"must be {len(self.conv_channels)} strides >= 1, one per conv layer",
        )
        _check(self.encoder_features >= 0, "encoder_features", "must be >= 0")
        min_size = min_frame_size(self.conv_kernel, self.conv_strides)
        _check(
            self.frame_size is None or self.frame_size >= min_size,
            "frame_size",
            f"must be >= {min_size} pixels for the encoder ({len(self.conv_strides)} conv layers, "
            f"kernel {self.conv_kernel}, strides {self.conv_strides})",
        )
        for name, value in ALGO_DEFAULTS[self.algo].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: filled once, before anyone reads it
        _check(self.target_policy_noise >= 0, "target_policy_noise", "must be >= 0")
        _check(self.target_noise_clip > 0, "target_noise_clip", "must be > 0")
        _check(self.policy_delay >= 1, "policy_delay", "must be >= 1")
        _check(self.per_alpha >= 0, "per_alpha", "must be >= 0")
        _check(0 <= self.per_beta0 <= 1, "per_beta0", "must be in [0, 1]")
        _check(self.per_eps > 0, "per_eps", "must be > 0")
        _check(self.n_step >= 1, "n_step", "must be >= 1")

    @property
    def critic_sizes(self) -> list[int]:
        return list(self.critic_hidden_sizes or self.hidden_sizes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Config:
        data = self.to_dict()
        if changes.get("algo", self.algo) != self.algo:
            # A new algorithm brings its own defaults for the switches not also changed here.
            for name in ALGO_DEFAULTS[self.algo]:
                data.pop(name)
        return from_dict({**data, **changes})


# TD3's values are those of Fujimoto et al. 2018: twin critics, σ = 0.2 clipped at 0.5, delay 2.
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "ddpg": {"twin_critics": False, "target_policy_noise": 0.0, "target_noise_clip": 0.5, "policy_delay": 1},
    "td3": {"twin_critics": True, "target_policy_noise": 0.2, "target_noise_clip": 0.5, "policy_delay": 2},
}


def min_frame_size(kernel: int, strides: list[int]) -> int:
    """The smallest frame side the conv encoder maps to at least one pixel (no padding)."""
    size = 1
    for stride in reversed(strides):
        size = (size - 1) * stride + kernel
    return size


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name} {message}")


# ---------------------------------------------------------------------------------------------------
# Building a Config from plain data (YAML, JSON, --set) with type checks that name the field.


def from_dict(data: dict[str, Any], cls: type = Config, prefix: str = "") -> Any:
    """Build `cls` from a mapping, refusing unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known: {', '.join(sorted(fields))})")
    values = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except ConfigError as e:
        if prefix:
            raise ConfigError(f"{prefix}{e}") from None
        raise


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name)
    if dataclasses.is_dataclass(hint):
        return from_dict(value, hint, name + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is int:
        # float.is_integer() is False for inf and nan, which int() cannot take.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())
        ):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be finite, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=value` → (["a", "b"], value parsed as YAML), so `--set tau=1e-3` gives a float."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({_yaml_reason(e)})") from None
    if isinstance(value, str):
        value = _yaml_number(value)
    return key.strip().split("."), value


def _yaml_number(text: str) -> Any:
    # YAML 1.1 reads "1e-3" as a string; people mean a number.
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text


def _yaml_reason(error: yaml.YAMLError) -> str:
    return str(getattr(error, "problem", None) or error).splitlines()[0]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.sub=value` strings to a plain mapping (the YAML form of a Config)."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


# ---------------------------------------------------------------------------------------------------
# Presets: one YAML per environment in the package, plus `paper`.


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
        raise ConfigError(f"{path} is not valid YAML ({_yaml_reason(e)})") from None
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


def resolve(
    env_id: str | None = None, preset: str | None = None, overrides: list[str] = (), **fields: Any
) -> Config:
    """The one way a Config is built from user input: preset (chosen by env id when not given),
    then explicit fields (`--steps`, `--seed`), then `--set` overrides, validated once at the end."""
    data: dict[str, Any] = {}
    if preset is not None:
        data = load_preset(preset)
    elif (env_id or Config.env_id) in preset_names():
        data = load_preset(env_id or Config.env_id)
    if env_id is not None:
        data["env_id"] = env_id
    data.update({k: v for k, v in fields.items() if v is not None})
    return from_dict(apply_overrides(data, list(overrides)))


def config_yaml(config: Config) -> str:
    """The text of a run's config.yaml, which `load_config` reads back to an equal Config."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def load_config(path: Path) -> Config:
    return from_dict(load_yaml(path))
