"""The README's command synopsis names exactly the options each command's --help has."""

import re
from pathlib import Path

import pytest

from ddpg.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SYNOPSIS = README.split("## Command line", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
# A command's synopsis may continue on indented lines.
LINES = [
    entry.split("#")[0] for entry in re.sub(r"\n\s+", " ", SYNOPSIS).splitlines() if entry.startswith("ddpg ")
]


def _parser(words: list[str]):
    parser = build_parser()
    for word in words:
        (sub,) = [a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)]
        parser = sub.choices[word]
    return parser


def _command(line: str) -> str:
    return re.findall(r"^ddpg((?: [a-z]+)+)", line)[0].strip()


# A command may have several lines (`ddpg sweep --grid …` and `ddpg sweep --resume DIR …`): together they
# name its options.
COMMANDS = sorted({_command(line) for line in LINES})


@pytest.mark.parametrize("command", COMMANDS)
def test_synopsis_lines_name_the_options_of_their_command(command):
    parser = _parser(command.split())
    lines = [line for line in LINES if _command(line) == command]
    documented = {option for line in lines for option in re.findall(r"(--[a-z-]+)", line)}
    actual = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert documented == actual
