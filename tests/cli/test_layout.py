"""How the command line is put together: one module per group, environments' groups from their packages."""

import ast
from pathlib import Path

import ddpg.cli
from ddpg.cli import build_parser
from ddpg.envs import cli_modules

CLI = Path(ddpg.cli.__file__).parent


def _subcommands(parser) -> list[str]:
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return list(action.choices)


def test_every_command_is_registered_by_its_group():
    assert _subcommands(build_parser()) == [
        "train",
        "evaluate",
        "plot",
        "resume",
        "export",
        "envs",
        "config",
        "sweep",
        "tune",
        "slotcar",
        "lane",
        "duckietown",
    ]
    assert [m.__name__ for m in cli_modules()] == [
        "ddpg.envs.slot_car.cli",
        "ddpg.envs.lane_following.cli",
        "ddpg.envs.duckietown.cli",
    ]


def test_the_core_cli_imports_no_environment_package():
    # ddpg.envs itself (EnvError, cli_modules) is fine; slot-car and lane code comes through cli_modules().
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                own = ("ddpg.envs.slot_car", "ddpg.envs.lane_following", "ddpg.envs.duckietown")
                assert not name.startswith(own), (path, name)
