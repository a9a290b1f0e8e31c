"""Hostile or mistaken presets and config values: a FIFO, a link to /dev/zero, a huge file, an alias
bomb, a value too long to quote, a misspelt key. Each is one `error: …` line, exit 2, quickly, and
nothing written."""

import os
import time

import pytest

from ddpg.cli import main
from ddpg.config import ConfigError, from_dict, load_yaml, parse_override
from ddpg.config.safe_yaml import MAX_VALUES, parse_yaml
from tests.helpers import error_line

BOMB = "env:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)  # 10**9 values once expanded, in 400 bytes


def _fifo(path):
    os.mkfifo(path)


def _zero(path):
    os.symlink("/dev/zero", path)


def _huge(path):
    path.write_text("# padding\n" * 200_000)


def _bomb(path):
    path.write_text(BOMB)


def _self_alias(path):
    path.write_text("env: &a {x: *a}\n")


def _deep(path):
    path.write_text("env: " + "[" * 5000 + "]" * 5000 + "\n")


def _binary(path):
    path.write_bytes(b"tau: \xff\xfe\n")


def _directory(path):
    path.mkdir()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, "is not a regular file (a FIFO)"),
        (_zero, "is not a regular file (a character device)"),
        (_directory, "is not a regular file (a directory)"),
        (_huge, "is larger than 1 MiB"),
        (_bomb, f"expands to more than {MAX_VALUES} values"),
        (_self_alias, "an alias refers to the value it is inside of"),
        (_deep, "nested too deeply"),
        (_binary, "is not UTF-8 text"),
    ],
)
def test_hostile_preset_files_are_one_line_quickly(make, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "preset.yaml")
    start = time.perf_counter()
    assert main(["train", "--preset", "preset.yaml"]) == 2
    line = error_line(capsys)
    # A guard against hanging, not a speed target: expanding the bomb or reading the FIFO would take
    # hours or never end, so the bound is loose enough for a loaded machine (it once took 5 s at load 6).
    assert time.perf_counter() - start < 60
    assert "preset.yaml" in line and message in line
    assert len(line) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset.yaml"]


def test_a_fifo_without_a_yaml_suffix_is_refused_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fifo(tmp_path / "mine")
    assert main(["train", "--preset", "mine"]) == 2
    assert "mine is not a regular file (a FIFO)" in error_line(capsys)


def test_an_alias_bomb_in_a_set_value_is_refused():
    flow = "{" + ", ".join(line.strip() for line in BOMB.splitlines()[1:]) + "}"
    with pytest.raises(ConfigError, match=f"more than {MAX_VALUES} values"):
        parse_override(f"env={flow}")


def test_aliases_within_the_bound_still_load(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("hidden_sizes: &h [64, 64]\ncritic_hidden_sizes: *h\n")
    assert load_yaml(path) == {"hidden_sizes": [64, 64], "critic_hidden_sizes": [64, 64]}
    assert parse_yaml("a: &a {x: 1}\nb: *a\n") == {"a": {"x": 1}, "b": {"x": 1}}


def test_a_link_to_a_regular_file_is_read(tmp_path):
    (tmp_path / "real.yaml").write_text("tau: 0.01\n")
    os.symlink(tmp_path / "real.yaml", tmp_path / "link.yaml")
    assert load_yaml(tmp_path / "link.yaml") == {"tau": 0.01}


@pytest.mark.parametrize(
    "override",
    [
        "tau=" + "x" * 100_000,
        "hidden_sizes=" + "1" * 5000,
        "noise.kind=" + "p" * 5000,
        "env_id=[" + ",".join(["1"] * 20_000) + "]",
        "x" * 5000 + "=1",
        "tau." + "x" * 5000 + "=1",
    ],
)
def test_quoted_values_are_capped_to_one_short_line(override, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", override]) == 2
    assert len(error_line(capsys)) < 300
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"learning_rate": 1},
            "unknown config key 'learning_rate' (did you mean: actor_lr, critic_lr, encoder_lr?)",
        ),
        ({"taux": 1}, "unknown config key 'taux' (did you mean: tau?)"),
        ({"hidden_size": [8]}, "unknown config key 'hidden_size' (did you mean: hidden_sizes"),
        ({"noise": {"sgima": 0.1}}, "unknown config key 'noise.sgima' (did you mean: noise.sigma?)"),
        (
            {"optimisation": {"taux": 1}},
            "unknown config key 'optimisation.taux' (did you mean: optimisation.tau?)",
        ),
        (
            {"zzzqqq": 1},
            "unknown config key 'zzzqqq' (not a flat key of docs/configuration.md, nor a section",
        ),
    ],
)
def test_unknown_keys_suggest_the_nearest_names(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(data)
    assert str(info.value).startswith(message)


def test_an_unknown_key_on_the_command_line_suggests_the_nearest(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", "learning_rate=1"]) == 2
    assert error_line(capsys) == (
        "error: unknown config key 'learning_rate' (did you mean: actor_lr, critic_lr, encoder_lr?)"
    )
