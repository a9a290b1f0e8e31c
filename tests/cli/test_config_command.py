"""`ddpg config`: the config `ddpg train` would run with, and every field there is."""

import re

import yaml

from ddpg.cli import main
from ddpg.config import Config, flatten, from_dict, resolve
from ddpg.config.sections import FLAT_KEYS


def test_config_prints_what_train_would_run_with(capsys):
    args = ["--env", "Pendulum-v1", "--steps", "1234", "--seed", "7", "--algo", "td3"]
    assert main(["config", *args, "--set", "tau=0.01", "hidden_sizes=[32,32]"]) == 0
    printed = from_dict(yaml.safe_load(capsys.readouterr().out))
    assert printed == resolve(
        env_id="Pendulum-v1",
        algo="td3",
        total_steps=1234,
        seed=7,
        overrides=["tau=0.01", "hidden_sizes=[32,32]"],
    )
    assert (printed.loop.total_steps, printed.loop.seed) == (1234, 7)
    assert flatten(printed.to_dict())["twin_critics"] is True


def test_config_shows_the_default_preset_for_an_env_without_one(capsys):
    assert main(["config", "--env", "InvertedPendulum-v5"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["environment"]["id"] == "InvertedPendulum-v5"
    assert printed["algorithm"]["algo"] == "td3" and printed["networks"]["hidden_sizes"] == [256, 256]
    assert (printed["optimisation"]["tau"], printed["optimisation"]["batch_size"]) == (0.005, 256)
    assert main(["config", "--env", "InvertedPendulum-v5", "--preset", "paper"]) == 0
    paper = yaml.safe_load(capsys.readouterr().out)
    assert paper["algorithm"]["algo"] == "ddpg" and paper["networks"]["batch_norm"] is True
    assert (paper["optimisation"]["tau"], paper["optimisation"]["batch_size"]) == (0.001, 64)
    assert main(["config", "--env", "InvertedPendulum-v5", "--algo", "ddpg"]) == 0
    ddpg = yaml.safe_load(capsys.readouterr().out)  # the update changes, the default's settings stay
    assert ddpg["algorithm"]["algo"] == "ddpg" and ddpg["algorithm"]["twin_critics"] is False
    assert {k: ddpg[k] for k in ("networks", "optimisation")} == {
        k: printed[k] for k in ("networks", "optimisation")
    }


def test_config_fields_lists_every_field_with_its_flat_key_and_default(capsys):
    assert main(["config", "--fields"]) == 0
    rows = [re.split(r"\s{2,}", line)[:3] for line in capsys.readouterr().out.splitlines()]
    assert sorted(row[1] for row in rows) == sorted(FLAT_KEYS)
    assert ["optimisation.tau", "tau", "0.001"] in rows
    # Each default is written as --set reads it back: null, true, [400, 300], {kind: gaussian, ...}.
    defaults = flatten(Config().to_dict())
    assert all(yaml.safe_load(shown) == defaults[flat] for _, flat, shown in rows)
    assert ["logging.checkpoint_every", "checkpoint_every", "null"] in rows


def test_config_fields_says_what_every_field_is(capsys):
    assert main(["config", "--fields"]) == 0
    rows = {
        row[1]: row for row in (re.split(r"\s{2,}", line) for line in capsys.readouterr().out.splitlines())
    }
    assert [flat for flat, row in rows.items() if len(row) < 4] == []
    # A field without a default (an algorithm's switch) keeps the comment on its line.
    assert rows["twin_critics"][3] == "two critics, the minimum in the target (TD3)"


def test_an_unknown_key_in_config_is_one_line(capsys):
    assert main(["config", "--set", "learning_rate=1"]) == 2
    assert "did you mean" in capsys.readouterr().err
