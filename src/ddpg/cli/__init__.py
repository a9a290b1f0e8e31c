"""The `ddpg` command: thin commands over the trainer, evaluation and plots.

Each command group is a module with `register(subparsers)` and its `cmd_*` functions: `run`
(train, evaluate, resume, export, plot, envs), `config` and `experiments` (sweep, tune) here, and the
environments' own groups (`ddpg slotcar …`, `ddpg lane …`) in their packages, found through
`ddpg.envs.cli_modules()`.
Every user mistake ends as one line `error: …` on stderr and exit status 2, before anything is written; a
failure of the environment or the machine as one line and exit status 1; an interruption exits 130
(`shared`).
"""

from __future__ import annotations

import argparse

from ddpg.cli import config, experiments, run
from ddpg.cli.shared import USER_ERRORS, Parser, UsageError, run_command

__all__ = ["USER_ERRORS", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ddpg.envs import cli_modules

    parser = Parser(prog="ddpg", description="Deep deterministic policy gradient (Lillicrap et al. 2016).")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="let a failure raise with its traceback, for a bug report (also DDPG_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for group in (run, config, experiments, *cli_modules()):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)
