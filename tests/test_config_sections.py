"""The config in sections, and what still reads and writes the flat config of earlier versions."""

import dataclasses
import json
import os
import typing
from pathlib import Path

import pytest
import yaml

from ddpg import DDPG
from ddpg.cli import main
from ddpg.config import (
    FLAT_KEYS,
    SECTIONS,
    AlgorithmConfig,
    Config,
    ConfigError,
    OptimisationConfig,
    apply_overrides,
    config_yaml,
    flatten,
    from_dict,
    load_config,
    load_preset,
    nest,
    resolve,
)
from ddpg.experiments.compare import group_runs, load_run

FIXTURES = Path(__file__).parent / "fixtures"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_set_takes_flat_keys_and_section_keys_alike():
    flat = resolve(overrides=["tau=0.005", "hidden_sizes=[64,64]", "noise.sigma=0.2", "env.track=figure8"])
    dotted = resolve(
        overrides=[
            "optimisation.tau=0.005",
            "networks.hidden_sizes=[64,64]",
            "exploration.noise.sigma=0.2",
            "environment.kwargs.track=figure8",
        ]
    )
    assert flat == dotted
    assert flat.optimisation.tau == 0.005 and flat.networks.hidden_sizes == [64, 64]
    assert flat.exploration.noise.sigma == 0.2 and flat.environment.kwargs == {"track": "figure8"}


def test_later_overrides_win_whichever_form_they_use():
    assert resolve(overrides=["tau=0.1", "optimisation.tau=0.2"]).optimisation.tau == 0.2
    assert resolve(overrides=["optimisation.tau=0.2", "tau=0.1"]).optimisation.tau == 0.1
    data = apply_overrides({"optimisation": {"tau": 0.3, "gamma": 0.9}}, ["tau=0.4"])
    assert data == {"optimisation": {"tau": 0.4, "gamma": 0.9}}


def test_flat_keyword_arguments_sections_and_mappings_build_the_same_config():
    flat = Config(
        total_steps=500, tau=0.005, hidden_sizes=[32], action_layer=0, env_id="MountainCarContinuous-v0"
    )
    sections = Config(
        loop={"total_steps": 500},
        optimisation=OptimisationConfig(tau=0.005),
        networks={"hidden_sizes": [32], "action_layer": 0},
        environment={"id": "MountainCarContinuous-v0"},
    )
    assert flat == sections


def test_flat_keys_read_back_as_read_only_aliases_of_the_sections():
    config = Config(tau=0.005, env={"g": 9.0}, pixels=True)
    for key, (section, name) in FLAT_KEYS.items():
        assert getattr(config, key) == getattr(getattr(config, section), name), key
    assert config.env_id == "Pendulum-v1" and config.env == {"g": 9.0} and config.pixels is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tau = 0.1
    with pytest.raises(AttributeError, match="taux"):
        config.taux  # noqa: B018
    assert "tau" in dir(config) and "optimisation" in dir(config)


def test_every_flat_key_belongs_to_one_section_and_no_section_is_named_like_one():
    fields = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    assert len(FLAT_KEYS) == len(fields) and not set(FLAT_KEYS) & set(SECTIONS)
    assert list(SECTIONS) == [f.name for f in dataclasses.fields(Config)]


def test_errors_name_the_field_by_its_flat_key_and_unknown_keys_as_written():
    with pytest.raises(ConfigError, match=r"tau must be in \(0, 1\]"):
        from_dict({"optimisation": {"tau": 2}})
    with pytest.raises(ConfigError, match=r"noise.sigma must be >= 0"):
        from_dict({"exploration": {"noise": {"sigma": -1}}})
    with pytest.raises(ConfigError, match="env_id must be a string"):
        from_dict({"environment": {"id": 3}})
    with pytest.raises(ConfigError, match=r"unknown config key 'optimisation.taux'"):
        from_dict({"optimisation": {"taux": 0.1}})
    with pytest.raises(ConfigError, match="optimisation must be a mapping"):
        from_dict({"optimisation": 0.1})
    with pytest.raises(ConfigError, match=r"--set tau.x: 'tau' is not a section"):
        apply_overrides({}, ["tau=0.1", "tau.x=1"])


def test_the_algorithm_switches_have_concrete_types_and_the_algorithms_defaults():
    hints = typing.get_type_hints(AlgorithmConfig)
    assert all(type(None) not in typing.get_args(hint) for hint in hints.values())
    assert from_dict({"algorithm": {"algo": "td3"}}).algorithm == AlgorithmConfig.of("td3")
    assert AlgorithmConfig.of("td3", policy_delay=3).policy_delay == 3
    with pytest.raises(TypeError):
        AlgorithmConfig(algo="td3")  # no silent DDPG switches under a TD3 name
    td3 = Config().replace(algorithm={"algo": "td3"})
    assert td3.algorithm == AlgorithmConfig.of("td3")
    assert Config(algo="td3", policy_delay=3).replace(algo="ddpg", policy_delay=4).algorithm == (
        AlgorithmConfig.of("ddpg", policy_delay=4)
    )


def test_replace_with_a_mapping_changes_only_the_fields_it_names():
    config = Config(tau=0.005, gamma=0.9).replace(optimisation={"tau": 0.01}, seed=3)
    assert (config.optimisation.tau, config.optimisation.gamma, config.loop.seed) == (0.01, 0.9, 3)
    with pytest.raises(ConfigError, match="unknown config key 'taux'"):
        config.replace(taux=1)


def test_config_yaml_is_nested_and_loads_back(tmp_path):
    config = resolve(env_id="SlotCarRacing-v0", overrides=["algo=td3", "env.track=figure8"])
    text = config_yaml(config)
    data = yaml.safe_load(text)
    assert list(data) == list(SECTIONS)
    assert data["environment"]["kwargs"]["track"] == "figure8" and data["algorithm"]["policy_delay"] == 2
    (tmp_path / "config.yaml").write_text(text)
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize("run", ["legacy_state_run", "legacy_pixel_run"])
def test_flat_config_yaml_of_earlier_versions_loads_and_converts_both_ways(run):
    path = FIXTURES / run / "config.yaml"
    flat = yaml.safe_load(path.read_text())
    config = load_config(path)
    assert from_dict(config.to_dict()) == config
    converted = flatten(config.to_dict())
    assert {k: converted[k] for k in flat} == flat  # every key of the old flat file keeps its value
    assert from_dict(nest(flat)) == config  # fields added since take their defaults
    assert config.loop.seed == flat["seed"] and config.environment.id == flat["env_id"]


def test_a_preset_may_be_flat_or_nested(tmp_path):
    nested = tmp_path / "nested.yaml"
    nested.write_text(yaml.safe_dump(nest(load_preset("SlotCarRacing-v0"))))
    assert resolve(preset=str(nested), overrides=["tau=0.01"]) == resolve(
        preset="SlotCarRacing-v0", overrides=["optimisation.tau=0.01"]
    )


def fake_run(root: Path, data: dict, returns: list[float]) -> Path:
    root.mkdir(parents=True)
    (root / "config.yaml").write_text(yaml.safe_dump(data))
    rows = "".join(f"{s},{r},0.0\n" for s, r in zip((100, 200), returns))
    (root / "eval.csv").write_text("step,mean_return,std_return\n" + rows)
    (root / "summary.json").write_text(json.dumps({"train_steps_per_second": 1.0}))
    return root


@pytest.mark.parametrize("key", ["tau", "optimisation.tau", "noise.sigma", "exploration.noise.sigma"])
def test_group_by_reads_flat_and_nested_config_yaml_alike(tmp_path, key):
    old = {"tau": 0.01, "seed": 0, "noise": {"sigma": 0.1}}  # flat, as earlier versions wrote it
    new = Config(tau=0.01, seed=1).to_dict()
    runs = [fake_run(tmp_path / "old", old, [-2.0, -1.0]), fake_run(tmp_path / "new", new, [-4.0, -3.0])]
    settings = group_runs([load_run(r) for r in runs], [key])
    assert len(settings) == 1 and len(settings[0].runs) == 2
    assert list(settings[0].values.values()) in ([0.01], [0.1])


def test_the_library_reads_the_sections_not_the_flat_aliases(tmp_path, monkeypatch, capsys):
    def no_alias(self, name):
        raise AttributeError(f"flat alias {name!r} read by the library")

    monkeypatch.setattr(Config, "__getattr__", no_alias)
    run = tmp_path / "run"
    fast = ["hidden_sizes=[8,8]", "batch_size=8", "learning_starts=20", "eval_every=40", "eval_episodes=1"]
    fast += ["progress=false", "video=false", "log_every=10", "checkpoint_every=40", "max_episode_steps=30"]
    fast += ["buffer_size=100", "conv_channels=[4]", "conv_strides=[2]"]
    common = ["--steps", "60", "--algo", "td3", "--set", "prioritized=true", "n_step=2", *fast]
    assert main(["train", "--env", "tests.helpers:PixelEnv", "--run-dir", str(run), *common]) == 0
    os.replace(run / "checkpoints" / "latest", run / "checkpoints" / "old-latest")
    os.symlink("step_000000040", run / "checkpoints" / "latest")  # resume from step 40 of 60
    env = ["--env", "tests.helpers:PixelEnv"]  # a run directory names no code ddpg imports by itself
    assert main(["resume", str(run), *env]) == 0
    assert main(["evaluate", str(run), "--episodes", "1", *env]) == 0
    assert main(["plot", str(run), "--group-by", "tau", "--out", str(tmp_path / "c.png")]) == 0
    agent = DDPG(
        "Pendulum-v1", Config(obs_norm=True, hidden_sizes=[8], n_envs=2, vectorization="sync", **_quick())
    )
    agent.learn(40, run_dir=tmp_path / "state")
    DDPG.load(tmp_path / "state").evaluate(1)
    agent.close()
    capsys.readouterr()


def _quick() -> dict:
    keys = {"action_layer": 0, "batch_size": 8, "learning_starts": 10, "eval_episodes": 1}
    return {**keys, "progress": False, "video": False}


def test_every_section_field_is_documented_with_its_section_key_and_flat_key():
    doc = DOCS.read_text()
    missing = [
        f"{section}.{name} / {flat}"
        for flat, (section, name) in FLAT_KEYS.items()
        if f"`{section}.{name}`" not in doc or f"`{flat}`" not in doc
    ]
    missing += [f"## `{section}`" for section in SECTIONS if f"## `{section}`" not in doc]
    assert not missing, f"add to docs/configuration.md: {missing}"
