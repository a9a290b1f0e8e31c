import pytest

from ddpg.config import (
    Config,
    ConfigError,
    NoiseConfig,
    apply_overrides,
    from_dict,
    load_preset,
    preset_names,
    resolve,
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("actor_lr", 0.0, "actor_lr"),
        ("critic_lr", -1e-3, "critic_lr"),
        ("tau", 0.0, "tau"),
        ("tau", 1.5, "tau"),
        ("gamma", 1.01, "gamma"),
        ("gamma", -0.1, "gamma"),
        ("dropout", 1.0, "dropout"),
        ("action_layer", 5, "action_layer"),
        ("hidden_sizes", [], "hidden_sizes"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({field: value})


def test_batch_norm_and_layer_norm_together_are_refused():
    with pytest.raises(ConfigError, match="layer_norm cannot be combined with batch_norm"):
        Config(batch_norm=True, layer_norm=True)


def test_batch_larger_than_buffer_is_refused():
    with pytest.raises(ConfigError, match=r"batch_size.*buffer_size"):
        Config(batch_size=128, buffer_size=64)


def test_unknown_keys_are_refused_with_the_known_ones_listed():
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        from_dict({"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match=r"unknown config key 'noise.sgima'"):
        from_dict({"noise": {"sgima": 0.1}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"batch_size": "big"}, "batch_size must be an integer"),
        ({"batch_size": 1.5}, "batch_size must be an integer"),
        ({"tau": "x"}, "tau must be a number"),
        ({"batch_norm": 1}, "batch_norm must be true or false"),
        ({"hidden_sizes": 64}, "hidden_sizes must be a list"),
        ({"noise": {"kind": "pink"}}, "noise.kind must be one of"),
        ({"noise": {"sigma": -1}}, "noise.sigma"),
        ({"tau": float("nan")}, "tau must be finite"),
    ],
)
def test_wrong_types_are_refused_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


def test_overrides_parse_values_as_yaml_and_reach_nested_fields():
    data = apply_overrides(
        {},
        [
            "tau=1e-3",
            "hidden_sizes=[64, 64]",
            "noise.kind=ou",
            "env.g=9.81",
            "batch_norm=true",
            "max_episode_steps=null",
        ],
    )
    config = from_dict(data)
    assert config.tau == 1e-3 and config.hidden_sizes == [64, 64] and config.noise == NoiseConfig(kind="ou")
    assert config.env == {"g": 9.81} and config.batch_norm is True and config.max_episode_steps is None


def test_unparseable_override_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides({}, ["hidden_sizes=[64,"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["tau"])


def test_every_preset_is_a_valid_config():
    for name in preset_names():
        from_dict(load_preset(name))


def test_paper_preset_has_lillicraps_settings():
    c = from_dict(load_preset("paper"))
    assert (c.batch_size, c.actor_lr, c.critic_lr, c.critic_weight_decay, c.tau) == (
        64,
        1e-4,
        1e-3,
        1e-2,
        1e-3,
    )
    assert (c.noise.kind, c.noise.theta, c.noise.sigma) == ("ou", 0.15, 0.2)
    assert c.hidden_sizes == [400, 300] and c.batch_norm and c.action_layer == 1


def test_preset_is_chosen_by_env_id_and_overrides_win():
    c = resolve(env_id="Pendulum-v1", overrides=["tau=0.01"], total_steps=123)
    assert c.env_id == "Pendulum-v1" and c.tau == 0.01 and c.total_steps == 123
    assert c.hidden_sizes == load_preset("Pendulum-v1")["hidden_sizes"]


def test_an_env_without_a_preset_gets_the_default_preset():
    c = resolve(env_id="InvertedPendulum-v5", total_steps=3000)
    assert c.env_id == "InvertedPendulum-v5" and c.total_steps == 3000
    assert c == resolve(env_id="InvertedPendulum-v5", preset="default", total_steps=3000)
    assert c.algorithm.algo == "td3" and c.algorithm.twin_critics and c.algorithm.policy_delay == 2
    assert (c.hidden_sizes, c.action_layer, c.actor_lr, c.critic_lr) == ([256, 256], 0, 3e-4, 3e-4)
    assert (c.batch_size, c.tau, c.learning_starts) == (256, 0.005, 1000)
    assert (c.noise.kind, c.noise.sigma) == ("gaussian", 0.1)
    # An env's own preset still wins, and presets name no environment of their own.
    assert resolve(env_id="MountainCarContinuous-v0").noise.kind == "ou"
    assert resolve(env_id="Pendulum-v1").algorithm.algo == "ddpg"
    assert "env_id" not in load_preset("default")


def test_preset_paper_keeps_lillicraps_settings_on_an_env_without_a_preset():
    c = resolve(env_id="InvertedPendulum-v5", preset="paper")
    assert c.algorithm.algo == "ddpg" and not c.algorithm.twin_critics
    assert (c.hidden_sizes, c.action_layer, c.batch_norm) == ([400, 300], 1, True)
    assert (c.actor_lr, c.critic_lr, c.critic_weight_decay, c.tau, c.batch_size) == (
        1e-4,
        1e-3,
        1e-2,
        1e-3,
        64,
    )
    assert c.noise.kind == "ou"


def test_algo_on_an_env_without_a_preset_changes_only_the_update():
    default = resolve(env_id="InvertedPendulum-v5")
    ddpg = resolve(env_id="InvertedPendulum-v5", algo="ddpg")
    assert (
        ddpg.algorithm.algo == "ddpg" and not ddpg.algorithm.twin_critics and ddpg.algorithm.policy_delay == 1
    )
    assert (ddpg.networks, ddpg.optimisation, ddpg.exploration) == (
        default.networks,
        default.optimisation,
        default.exploration,
    )
    td7 = resolve(env_id="InvertedPendulum-v5", algo="td7")
    assert td7.algorithm.sale and td7.networks.critic_activation == "elu"  # td7's own, the preset's not set
    assert (td7.tau, td7.learning_starts, td7.batch_size) == (0.005, 1000, 256)
    assert resolve(env_id="InvertedPendulum-v5", overrides=["algo=ddpg"]) == ddpg


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'.*Pendulum-v1"):
        resolve(preset="nope")


def test_config_round_trips_through_a_dict():
    c = resolve(env_id="MountainCarContinuous-v0")
    assert from_dict(c.to_dict()) == c


def test_every_config_field_is_documented():
    import dataclasses
    from pathlib import Path

    from ddpg.config import NoiseConfig, Schedule
    from ddpg.config.sections import SECTIONS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    names = [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    names += [f"exploration.noise.{f.name}" for f in dataclasses.fields(NoiseConfig)]
    names += [f.name for f in dataclasses.fields(Schedule)]
    missing = [n for n in names if f"`{n}`" not in doc]
    assert not missing, f"add to docs/configuration.md: {missing}"
