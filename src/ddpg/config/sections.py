"""The sections of a `Config`: one frozen dataclass each, which validates its own fields.

A field keeps the name it had in the flat config of earlier versions, which is also its flat key for
`--set` and its read-only alias on `Config` (`config.tau` is `config.optimisation.tau`). Two fields of
`environment` have a flat key of their own, given in their metadata: `env_id` is `environment.id` and
`env` is `environment.kwargs`. Error messages name fields by their flat key, which is unique.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


MAX_SHOWN = 80  # characters of a value quoted in an error message


def shown(value: object, quote: bool = True) -> str:
    """`value`'s repr (`quote`) or str for an error message: at most `MAX_SHOWN` characters, so that a
    huge value given by mistake still makes one readable line (its full text is where the user put it)."""
    try:
        text = repr(value) if quote else str(value)
    except RecursionError:  # a structure that contains itself
        text = f"<a {type(value).__name__} that contains itself>"
    except ValueError:  # an int of more digits than Python converts to text
        text = f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 5] + "…" + text[-4:]


def check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name} {message}")


def positive_int(name: str, value: Any, least: int = 1) -> int:
    """`value` when it is an integer (a bool is not) of at least `least`, else a ValueError naming `name`:
    the check of the counts and sizes environments take as keyword arguments."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a positive integer" if least == 1 else f"an integer of at least {least}"
        raise ValueError(f"{name}: must be {what}, got {shown(value)}")
    return value


def flat_key(f: dataclasses.Field) -> str:
    """The key a section's field has in a flat config (and in error messages)."""
    return f.metadata.get("flat", f.name)


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
        check(self.final >= 0, "final", "must be >= 0")
        check(self.duration >= 1, "duration", "must be >= 1")
        check(0 < self.rate <= 1, "rate", "must be in (0, 1]")


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
        check(self.sigma >= 0, "sigma", "must be >= 0")
        check(self.theta > 0, "theta", "must be > 0")
        check(self.dt > 0, "dt", "must be > 0")


@dataclass(frozen=True)
class EnvironmentConfig:
    """Which environment, how many of it, and what to do with a non-finite step."""

    # A Gymnasium id (ddpg's own envs are registered: `ddpg envs`), or package.module:ClassName
    id: str = field(default="Pendulum-v1", metadata={"flat": "env_id"})
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"flat": "env"})  # for its constructor
    max_episode_steps: int | None = None  # overrides the env's own time limit
    n_envs: int = 1  # envs stepped together: each step of the loop adds n_envs transitions
    vectorization: Literal["sync", "async"] = "async"  # n_envs > 1: a subprocess per env, or in turn here
    on_nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/inf observation or reward: stop, or skip it

    def __post_init__(self) -> None:
        check(bool(self.id), "env_id", "must not be empty")
        check(
            self.max_episode_steps is None or self.max_episode_steps >= 1, "max_episode_steps", "must be >= 1"
        )
        check(self.n_envs >= 1, "n_envs", "must be >= 1")
        check(self.on_nonfinite in ("stop", "skip"), "on_nonfinite", "must be stop or skip")


@dataclass(frozen=True)
class LoopConfig:
    """How long, where and how often to update."""

    seed: int = 0  # seeds every generator of the run; evaluation episodes start from seed + 1,000,000
    total_steps: int = 20_000  # environment steps, counted in transitions (n_envs per step of the loop)
    device: str = "auto"  # auto: CUDA when available, else the CPU; or any torch device (cpu, cuda:1, mps)
    # Torch's intra-op threads, set by DDPG(): auto is one, the fastest for these small networks and
    # the kindest to other work on the machine (docs/BENCHMARKS.md); a number forces it.
    threads: Literal["auto"] | int = "auto"
    compile: Literal["auto", True, False] = "auto"  # fast update (ddpg.agent.fast): auto compiles long runs
    train_freq: int = 1  # environment steps between rounds of updates
    gradient_steps: int = 1  # updates per round
    stop_at_return: float | None = None  # stop once an evaluation's mean return reaches this
    # Experience collection by Ray actors (docs/actors.md): 0, this process steps the envs; N, N actors
    # with n_envs envs each send transitions to this process, which keeps the buffer and updates.
    actors: int = 0
    actor_batch: int = 50  # steps of each of an actor's envs per batch it sends
    actor_sync_every: int = 50  # steps of an actor between two pulls of the learner's policy weights
    actor_cpus: float = 1.0  # CPUs Ray reserves for each actor (less for envs that mostly wait)

    def __post_init__(self) -> None:
        check(self.actors >= 0, "actors", "must be >= 0")
        check(self.actor_batch >= 1, "actor_batch", "must be >= 1")
        check(self.actor_sync_every >= 1, "actor_sync_every", "must be >= 1")
        check(self.actor_cpus > 0, "actor_cpus", "must be > 0")
        check(0 <= self.seed < 2**63, "seed", "must be in [0, 2**63)")  # torch seeds are 64-bit
        check(self.total_steps >= 1, "total_steps", "must be >= 1")
        check(
            self.compile == "auto" or isinstance(self.compile, bool), "compile", "must be auto, true or false"
        )
        check(self.train_freq >= 1, "train_freq", "must be >= 1")
        check(self.gradient_steps >= 1, "gradient_steps", "must be >= 1")
        check(
            self.threads == "auto" or (type(self.threads) is int and self.threads >= 1),
            "threads",
            "must be auto or an integer >= 1",
        )


# TD3's values are those of Fujimoto et al. 2018: twin critics, σ = 0.2 clipped at 0.5, delay 2. TD7's
# are those of Fujimoto et al. 2023 (and its reference code): TD3's, plus SALE's encoders, LAP replay
# (α 0.4, priorities at least 1), hard target updates every 250 updates and value clipping.
_TD3 = {"twin_critics": True, "target_policy_noise": 0.2, "target_noise_clip": 0.5, "policy_delay": 2}
_LAP = {"lap_alpha": 0.4, "lap_min_priority": 1.0}  # every algorithm gives every switch a value
_TD7_OFF = {"sale": False, "lap": False, **_LAP, "target_update_every": 0, "value_clip": False}
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "ddpg": {
        "twin_critics": False,
        "target_policy_noise": 0.0,
        "target_noise_clip": 0.5,
        "policy_delay": 1,
        **_TD7_OFF,
    },
    "td3": {**_TD3, **_TD7_OFF},
    "td7": {**_TD3, "sale": True, "lap": True, **_LAP, "target_update_every": 250, "value_clip": True},
}

# An algorithm's values for fields of other sections, taken when neither the user nor the preset gives
# them (parse.build_sections): TD7's networks and Adam settings (Fujimoto et al. 2023, its code).
ALGO_SECTION_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "td7": {
        "networks": {"hidden_sizes": [256, 256], "critic_activation": "elu"},
        "optimisation": {"actor_lr": 3e-4, "critic_lr": 3e-4, "batch_size": 256},
    },
}


@dataclass(frozen=True)
class AlgorithmConfig:
    """DDPG, TD3 or TD7 (docs/algorithms.md), and their switches, each of which can be set on its own.

    The switches have no defaults of their own: they are the algorithm's (`ALGO_DEFAULTS`), filled by
    `AlgorithmConfig.of` for the switches not given, so `algo: td3` is TD3 and each piece can still be
    ablated. TD7's own switches (`sale` … `value_clip`) belong to its update and are refused elsewhere."""

    algo: Literal["ddpg", "td3", "td7"]  # sets the switches below that are not given (docs/algorithms.md)
    twin_critics: bool  # two critics, the minimum in the target (TD3)
    target_policy_noise: float  # σ of the smoothing noise on μ'(s'), normalised units
    target_noise_clip: float  # the smoothing noise is clipped to [-c, c]
    policy_delay: int  # critic updates per actor and target update
    sale: bool  # td7: state and state-action embeddings z_s, z_sa learnt by predicting z_s'
    lap: bool  # td7: LAP replay, priorities max(|δ|, lap_min_priority)^lap_alpha, with its loss
    lap_alpha: float  # td7: LAP's priority exponent
    lap_min_priority: float  # td7: LAP's smallest priority, also where its loss turns from square to linear
    target_update_every: int  # td7: hard target (and fixed encoder) updates every this many; 0: Polyak τ
    value_clip: bool  # td7: Q' in the target clipped to the range of the targets seen so far
    # Policy checkpoints (run/policy_checkpoint.py): auto is on for td7, off for the others.
    policy_checkpoints: Literal["auto", True, False] = "auto"
    checkpoint_episodes: int = 1  # episodes per assessment of a policy
    checkpoint_episodes_late: int = 20  # episodes per assessment after checkpoint_late_updates updates
    checkpoint_late_updates: int = 750_000  # updates before assessments grow to checkpoint_episodes_late
    checkpoint_relax: float = 0.9  # then, once, the best minimum return drops by (1 − this) of its size

    @property
    def policy_checkpointing(self) -> bool:
        """Whether policy checkpoints are on: `auto` compares the name, so it holds for any algo."""
        return self.policy_checkpoints is True or (self.policy_checkpoints == "auto" and self.algo == "td7")

    @classmethod
    def of(cls, algo: str = "ddpg", **switches: Any) -> AlgorithmConfig:
        """`algo` with its defaults for the switches not given."""
        check(algo in ALGO_DEFAULTS, "algo", f"must be one of {', '.join(ALGO_DEFAULTS)}, got {shown(algo)}")
        return cls(algo=algo, **{**ALGO_DEFAULTS[algo], **switches})  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        check(self.target_policy_noise >= 0, "target_policy_noise", "must be >= 0")
        check(self.target_noise_clip > 0, "target_noise_clip", "must be > 0")
        check(self.policy_delay >= 1, "policy_delay", "must be >= 1")
        check(self.lap_alpha > 0, "lap_alpha", "must be > 0")
        check(self.lap_min_priority > 0, "lap_min_priority", "must be > 0")
        check(self.target_update_every >= 0, "target_update_every", "must be >= 0")
        if self.algo != "td7":
            for name in ("sale", "lap", "value_clip", "target_update_every"):
                check(
                    not getattr(self, name),
                    name,
                    f"is a switch of td7's update (algo: td7); {self.algo} leaves it off",
                )
        check(
            self.policy_checkpoints == "auto" or isinstance(self.policy_checkpoints, bool),
            "policy_checkpoints",
            "must be auto, true or false",
        )
        check(self.checkpoint_episodes >= 1, "checkpoint_episodes", "must be >= 1")
        check(self.checkpoint_episodes_late >= 1, "checkpoint_episodes_late", "must be >= 1")
        check(self.checkpoint_late_updates >= 0, "checkpoint_late_updates", "must be >= 0")
        check(0 < self.checkpoint_relax <= 1, "checkpoint_relax", "must be in (0, 1]")


@dataclass(frozen=True)
class NetworksConfig:
    """The actor and the critic, and the conv encoder in front of them for pixel observations."""

    hidden_sizes: list[int] = field(default_factory=lambda: [400, 300])  # actor, and critic unless below
    critic_hidden_sizes: list[int] | None = None  # null: same as hidden_sizes
    action_layer: int = 1  # hidden layer the action enters the critic at: 0 = with the state
    batch_norm: bool = False  # the paper's batch norm on the state and hidden layers (eval mode to act)
    dropout: float = 0.0  # dropout after each hidden layer's activation (DroQ), off when acting
    layer_norm: bool = False  # LayerNorm after every hidden linear layer, before its ReLU (Baselines)
    conv_channels: list[int] = field(default_factory=lambda: [32, 32, 32])  # paper: 3 layers of 32
    conv_kernel: int = 3  # each conv layer's square kernel, no padding
    conv_strides: list[int] = field(default_factory=lambda: [2, 2, 2])  # one per conv layer
    encoder_features: int = 0  # >0: conv output → Linear → LayerNorm → tanh of this size; 0: paper
    share_encoder: bool = False  # the actor uses the critic's encoder, its gradient stopped there
    critic_activation: Literal["relu", "elu"] = "relu"  # the critic's (and td7's SALE encoder's); td7: elu
    zs_dim: int = 256  # td7: size of the embeddings z_s and z_sa
    encoder_hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])  # td7: each SALE encoder's

    @property
    def critic_sizes(self) -> list[int]:
        return list(self.critic_hidden_sizes or self.hidden_sizes)

    def __post_init__(self) -> None:
        check(
            len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
            "hidden_sizes",
            "must be a non-empty list of positive sizes",
        )
        critic_sizes = self.critic_sizes
        check(min(critic_sizes, default=0) >= 1, "critic_hidden_sizes", "must be positive sizes")
        check(
            0 <= self.action_layer <= len(critic_sizes) - 1,
            "action_layer",
            f"must be in [0, {len(critic_sizes) - 1}] for {len(critic_sizes)} critic hidden layers",
        )
        check(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        check(not (self.batch_norm and self.layer_norm), "layer_norm", "cannot be combined with batch_norm")
        check(
            len(self.conv_channels) >= 1 and min(self.conv_channels) >= 1,
            "conv_channels",
            "must be a non-empty list of positive sizes",
        )
        check(self.conv_kernel >= 1, "conv_kernel", "must be >= 1")
        check(
            len(self.conv_strides) == len(self.conv_channels) and min(self.conv_strides) >= 1,
            "conv_strides",
            f"must be {len(self.conv_channels)} strides >= 1, one per conv layer",
        )
        check(self.encoder_features >= 0, "encoder_features", "must be >= 0")
        check(self.zs_dim >= 1, "zs_dim", "must be >= 1")
        check(
            len(self.encoder_hidden_sizes) >= 1 and min(self.encoder_hidden_sizes) >= 1,
            "encoder_hidden_sizes",
            "must be a non-empty list of positive sizes",
        )


@dataclass(frozen=True)
class OptimisationConfig:
    """The learner's Adam steps and targets: what `Learner` takes, with the algorithm's switches."""

    actor_lr: float = 1e-4  # Adam's step for the actor (paper: 1e-4)
    critic_lr: float = 1e-3  # Adam's step for the critic (paper: 1e-3)
    actor_lr_schedule: Schedule = field(default_factory=Schedule)  # multiplies actor_lr over time
    critic_lr_schedule: Schedule = field(default_factory=Schedule)  # multiplies critic_lr over time
    actor_weight_decay: float = 0.0  # L2 penalty on the actor's weights
    critic_weight_decay: float = 0.0  # the paper's L2 penalty on Q, 1e-2
    grad_clip_norm: float | None = None  # clip each network's gradient to this norm; null: never
    gamma: float = 0.99  # discount
    tau: float = 0.001  # Polyak step of the target networks per update (paper: 0.001)
    batch_size: int = 64  # transitions per update (paper: 64)
    encoder_lr: float = 3e-4  # td7: Adam's step for the SALE encoders

    def __post_init__(self) -> None:
        check(self.actor_lr > 0, "actor_lr", "must be > 0")
        check(self.critic_lr > 0, "critic_lr", "must be > 0")
        check(self.encoder_lr > 0, "encoder_lr", "must be > 0")
        check(self.actor_weight_decay >= 0, "actor_weight_decay", "must be >= 0")
        check(self.critic_weight_decay >= 0, "critic_weight_decay", "must be >= 0")
        check(self.grad_clip_norm is None or self.grad_clip_norm > 0, "grad_clip_norm", "must be > 0")
        check(0 <= self.gamma <= 1, "gamma", "must be in [0, 1]")
        check(0 < self.tau <= 1, "tau", "must be in (0, 1]")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")


@dataclass(frozen=True)
class ReplayConfig:
    """The replay buffer: its size, prioritized replay (Schaul et al. 2016) and n-step returns."""

    buffer_size: int = 1_000_000  # transitions kept; the oldest go first (paper: 1e6)
    prioritized: bool = False  # proportional prioritized replay
    per_alpha: float = 0.6  # priority exponent: 0 is uniform
    per_beta0: float = 0.4  # importance-weight exponent at step 0, annealed to 1 at total_steps
    per_eps: float = 1e-6  # added to |TD error| so no transition gets priority 0
    n_step: int = 1  # transitions summarise up to n rewards; episode ends stop the window

    def __post_init__(self) -> None:
        check(self.buffer_size >= 1, "buffer_size", "must be >= 1")
        check(self.per_alpha >= 0, "per_alpha", "must be >= 0")
        check(0 <= self.per_beta0 <= 1, "per_beta0", "must be in [0, 1]")
        check(self.per_eps > 0, "per_eps", "must be > 0")
        check(self.n_step >= 1, "n_step", "must be >= 1")


@dataclass(frozen=True)
class ExplorationConfig:
    """Random actions first, then the actor's action plus noise."""

    noise: NoiseConfig = field(default_factory=NoiseConfig)  # kind ou/gaussian/none, sigma, its schedule
    learning_starts: int = 1000  # steps of uniform random actions before the first update
    # With N actors, actor i explores with noise sigma ** (1 + alpha * i / (N - 1)) (Ape-X's spread of
    # epsilon, Horgan et al. 2018, for a Gaussian's sigma); 0: every actor explores with sigma.
    actor_sigma_alpha: float = 0.0

    def __post_init__(self) -> None:
        check(self.learning_starts >= 0, "learning_starts", "must be >= 0")
        check(self.actor_sigma_alpha >= 0, "actor_sigma_alpha", "must be >= 0")


@dataclass(frozen=True)
class ObservationConfig:
    """What the networks see. Pixel envs (uint8 (H, W, C) observations) are detected; `pixels` renders
    a state env. The wrappers (ddpg.envs.wrappers) read this section."""

    pixels: bool = False  # observe env.render() ("rgb_array") instead of the state
    frame_size: int | None = None  # resize frames to frame_size x frame_size; null: the env's (64 rendered)
    grayscale: bool = False  # frames to one luma channel (ITU-R BT.601), after resizing
    frame_stack: int = 3  # frames per observation (paper: 3)
    action_repeat: int = 1  # env steps per action, rewards summed (paper: 3 from pixels)
    # Rescale state observations by their running mean and std (Baselines, SB3's VecNormalize)
    obs_norm: bool = False
    obs_norm_clip: float = 5.0  # rescaled observations are clipped to ±this

    def __post_init__(self) -> None:
        check(self.frame_stack >= 1, "frame_stack", "must be >= 1")
        check(self.action_repeat >= 1, "action_repeat", "must be >= 1")
        check(self.obs_norm_clip > 0, "obs_norm_clip", "must be > 0")
        check(
            not (self.obs_norm and self.pixels),
            "obs_norm",
            "is for state observations; pixel frames are scaled to [0, 1] by the encoder",
        )


@dataclass(frozen=True)
class LoggingConfig:
    """Evaluations, logs, checkpoints and videos."""

    eval_every: int = 2000  # steps between evaluations; the best one's policy is kept in checkpoints/best
    eval_episodes: int = 5  # episodes per evaluation, deterministic policy; 0: none
    log_every: int = 100  # updates between rows of updates.csv
    checkpoint_every: int | None = None  # steps between resumable checkpoints; null: every eval_every
    keep_checkpoints: int = 2  # most recent step checkpoints kept in checkpoints/
    # Which kept step checkpoints hold the training state (replay buffer, generators) that resuming needs:
    # all, or only checkpoints/latest; the older ones then keep their weights (evaluate, export), not the
    # buffer, which is gigabytes for pixels.
    checkpoint_replay: Literal["all", "latest"] = "all"
    video: bool = True  # record the final evaluation's first episode to videos/final.mp4
    video_every: int = 0  # evaluations between videos/step_N.mp4 (when video is on); 0: only the final
    # true (or auto): rich's live bar in a terminal, a plain line per evaluation elsewhere (logs, CI,
    # notebooks); bar or plain to choose; false: nothing.
    progress: Literal[True, False, "auto", "bar", "plain"] = True
    tensorboard: bool = True  # TensorBoard events beside the CSVs, when the package is installed

    def __post_init__(self) -> None:
        check(self.eval_every >= 1, "eval_every", "must be >= 1")
        check(self.eval_episodes >= 0, "eval_episodes", "must be >= 0")
        check(self.log_every >= 1, "log_every", "must be >= 1")
        check(self.checkpoint_every is None or self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1")
        check(self.video_every >= 0, "video_every", "must be >= 0")


# The sections of a Config, in the order config.yaml lists them.
SECTIONS: dict[str, type] = {
    "environment": EnvironmentConfig,
    "loop": LoopConfig,
    "algorithm": AlgorithmConfig,
    "networks": NetworksConfig,
    "optimisation": OptimisationConfig,
    "replay": ReplayConfig,
    "exploration": ExplorationConfig,
    "observation": ObservationConfig,
    "logging": LoggingConfig,
}

# Flat key → (section, field): `tau` → ("optimisation", "tau"), `env_id` → ("environment", "id").
FLAT_KEYS: dict[str, tuple[str, str]] = {
    flat_key(f): (section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
}
assert len(FLAT_KEYS) == sum(len(dataclasses.fields(c)) for c in SECTIONS.values()), "a flat key twice"
assert not set(FLAT_KEYS) & set(SECTIONS), "a flat key that is also a section's name"


def min_frame_size(kernel: int, strides: list[int]) -> int:
    """The smallest frame side the conv encoder maps to at least one pixel (no padding)."""
    size = 1
    for stride in reversed(strides):
        size = (size - 1) * stride + kernel
    return size
