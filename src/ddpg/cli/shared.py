"""What every command group shares: the parser, argument types, `--set`, and one-line errors.

Every user mistake ends as one line `error: …` on stderr and exit status 2, before anything is written;
warnings show as `warning: …`. The command groups (this package's modules and the environments' own
`cli` modules) and the scripts in bench/ build on these pieces.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ddpg.config import ConfigError, parse_override
from ddpg.envs import EnvError
from ddpg.experiments.sweep import SweepError
from ddpg.run.checkpoint import CheckpointError
from ddpg.run.lock import RunInUse
from ddpg.run.run_dir import RunExists


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it."""


USER_ERRORS = (UsageError, ConfigError, EnvError, CheckpointError, SweepError, RunInUse, RunExists)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes raise UsageError (one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------------------------------------------
# Argument types and options.


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def png(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"must be a .png file, got {text!r}")
    return path


def add_overrides(parser: argparse.ArgumentParser, metavar: str, help: str) -> None:
    """`--set KEY=VALUE …` (repeatable) into `args.overrides`."""
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar=metavar, help=help
    )


def env_overrides(texts: Sequence[str]) -> dict[str, Any]:
    """`--set env.KEY=VALUE …` as keyword arguments for an environment's constructor."""
    kwargs = {}
    for text in texts:
        path, value = parse_override(text)
        if len(path) != 2 or path[0] != "env":
            raise UsageError(f"--set expects env.KEY=VALUE, got {text!r}")
        kwargs[path[1]] = value
    return kwargs


def require_run(run_dir: Path, checkpoint: str = "latest") -> None:
    """Refuse a path that is not a run directory with a checkpoint (`checkpoint` names which)."""
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return  # the checkpoint asked for is the loader's to find, or to list the kept ones
    if not (run_dir / "manifest.json").exists():
        raise UsageError(
            f"{run_dir} has no checkpoint (checkpoints/{checkpoint}); is it a ddpg run directory?"
        )


# ---------------------------------------------------------------------------------------------------
# Running a command.


def one_line(text: str) -> str:
    # Messages quote user input, which may hold newlines or other line-breaking characters.
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse `argv` and call the chosen command's `func(args)`; its exit status, or 2 after one
    `error: …` line for a user mistake, 130 when interrupted, 1 when training diverged."""
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return args.func(args)
    except USER_ERRORS as e:
        print(f"error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from ddpg.run.agent import TrainingDiverged

        if not isinstance(e, TrainingDiverged):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
