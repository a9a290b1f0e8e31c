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


@pytest.mark.parametrize("line", LINES, ids=[" ".join(line.split()[1:3]) for line in LINES])
def test_synopsis_line_names_the_options_of_its_command(line):
    words = re.findall(r"^ddpg((?: [a-z]+)+)", line)[0].split()
    parser = _parser(words)
    documented = set(re.findall(r"(--[a-z-]+)", line))
    actual = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert documented == actual
