"""What every command group shares: the parser, argument types, `--set`, and one-line errors.

Every user mistake ends as one line `error: …` on stderr and exit status 2, before anything is written;
a failure of the environment or the machine (a full disk) as one line and exit status 1; warnings show
as `warning: …`. `--debug` or DDPG_DEBUG=1 lets failures raise, for their traceback. The command groups
(this package's modules and the environments' own `cli` modules) and the scripts in bench/ build on
these pieces.
"""

from __future__ import annotations

import argparse
import errno
import os
import select
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ddpg.config import Config, ConfigError, parse_override
from ddpg.envs import EnvError, EnvFailure
from ddpg.experiments.sweep import SweepError
from ddpg.run.checkpoint import CheckpointError
from ddpg.run.export import ExportError
from ddpg.run.lock import RunInUse
from ddpg.run.logs import LogError
from ddpg.run.run_dir import RunExists


class UsageError(ValueError):
    """A command-line argument is wrong; the message says how to fix it."""


USER_ERRORS = (
    UsageError,
    ConfigError,
    EnvError,
    CheckpointError,
    SweepError,
    RunInUse,
    LogError,
    RunExists,
    ExportError,
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes raise UsageError (one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------------------------------------------
# Argument types and options.


def _integer(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def seed(text: str) -> int:
    return _integer(text, 0, "a non-negative integer")


def ray_address(text: str) -> str:
    """`--address`: auto, HOST:PORT, or a URL (ray://HOST:PORT), the forms Ray joins; checked here, as Ray
    says a malformed one with a traceback."""
    host, _, port = text.strip().rpartition(":")
    if text.strip() == "auto" or "://" in text or (host.strip("[]") and port.isdigit()):
        return text.strip()
    raise argparse.ArgumentTypeError(f"expected auto or HOST:PORT, got {text!r}")


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


def resolved_config(args: argparse.Namespace) -> Config:
    """The config that `ddpg train`'s (and `ddpg config`'s) --env, --preset, --set, --steps, --seed and
    --algo make."""
    from ddpg.config import resolve

    return resolve(
        env_id=args.env,
        preset=args.preset,
        overrides=args.overrides,
        total_steps=args.steps,
        seed=args.seed,
        algo=args.algo,
    )


def require_directory(run_dir: Path) -> None:
    """Refuse a run directory that does not exist, or is a file."""
    if not run_dir.is_dir():
        what = "is a file, not a directory" if run_dir.exists() else "does not exist"
        raise UsageError(f"run directory {run_dir} {what}")


def require_run(run_dir: Path) -> None:
    """Refuse a path that is neither a run directory with checkpoints nor a saved agent."""
    require_directory(run_dir)
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return  # the checkpoint asked for is the loader's to find, or to list the kept ones
    if not (run_dir / "manifest.json").exists():
        raise UsageError(f"{run_dir} has no checkpoint; is it a ddpg run directory?")


# ---------------------------------------------------------------------------------------------------
# Running a command.


def one_line(text: str) -> str:
    # Messages quote user input, which may hold newlines or other line-breaking characters.
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


# OSError numbers: a mistake in what the user asked for (exit 2), or the machine failing (exit 1), and
# what to do about each.
FILE_ERRORS: dict[int, tuple[int, str]] = {
    errno.ENOSPC: (1, "no space left on its device; free some space and run again"),
    errno.EDQUOT: (1, "disk quota exceeded; free some space and run again"),
    errno.EROFS: (1, "its file system is read-only; choose a writable place"),
    errno.EIO: (1, "input/output error: the disk or file system failed; check it"),
    errno.ENOTDIR: (2, "a part of the path is a file, not a directory; choose another path"),
    errno.ENAMETOOLONG: (2, "a name in the path is too long; choose a shorter one"),
    errno.EISDIR: (2, "it is a directory; give a file name"),
    errno.EEXIST: (2, "it already exists; choose another path or remove it"),
    errno.ENOTEMPTY: (2, "it is a non-empty directory; choose another path or remove it"),
    errno.EACCES: (2, "permission denied; choose a place you may write"),
    errno.EPERM: (2, "operation not permitted; choose a place you may write"),
    errno.ENOENT: (2, "it does not exist"),
}


def file_error(e: OSError) -> tuple[int, str]:
    """An OSError as (exit status, one line naming the path and what to do)."""
    status, advice = FILE_ERRORS.get(e.errno or 0, (1, e.strerror or "failed"))
    path = e.filename if e.filename is not None else e.filename2
    where = f"{os.fsdecode(path)}: " if path is not None else ""
    return status, f"{where}{advice}" if e.errno in FILE_ERRORS else f"{where}{e.strerror or e}"


def debugging(argv: Sequence[str] | None, args: argparse.Namespace | None) -> bool:
    """`--debug` (on the top-level parser) or DDPG_DEBUG=1: failures raise, with their traceback."""
    if os.environ.get("DDPG_DEBUG", "") not in ("", "0"):
        return True
    if args is not None:
        return bool(getattr(args, "debug", False))
    return "--debug" in (sys.argv[1:] if argv is None else argv)


def _fail(error: Exception, message: str, status: int) -> int:
    # Notes (`add_note`) say what to do next, e.g. how to continue a run that stopped.
    message = "; ".join([message, *getattr(error, "__notes__", ())])
    print(f"error: {one_line(message)}", file=sys.stderr)
    return status


def run_command(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse `argv` and call the chosen command's `func(args)`; its exit status, or after one `error: …`
    line: 2 for a user mistake, 1 for a failure of the environment or the machine (training that
    diverged, memory that ran out), 130 when interrupted; 141 and no line when the reader of stdout went
    away (`| head`). With `--debug` or DDPG_DEBUG=1 failures raise instead."""
    args = None
    hook = threading.excepthook
    try:
        args = parser.parse_args(argv)
        if not debugging(argv, args):
            threading.excepthook = _quiet_disk_errors
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            status = args.func(args)
            sys.stdout.flush()  # here, where a reader gone away (`| head`) can still be caught
            return status
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:  # not the user's input: the machine ran out (exit 1, as a failed run)
        if debugging(argv, args):
            raise
        print(f"error: {one_line(str(e)) or 'out of memory'}", file=sys.stderr)
        return 1
    except Exception as e:
        # Our output's reader gone away (`| head`) is no failure: nothing to say, and nowhere to say it.
        # A pipe to Ray or to an env's subprocess that breaks is one.
        if isinstance(e, BrokenPipeError) and not debugging(argv, args) and _silence_if_reader_gone():
            return 141  # what a shell reports for SIGPIPE
        status = None if debugging(argv, args) else _report_failure(e)
        if status is None:
            raise
        return status
    finally:
        threading.excepthook = hook


def _silence_if_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end has been closed (poll reports an error on it); if so,
    stdout goes to the null device from now on, so that later writes (the interpreter's last flush)
    raise nothing."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll here, or no file descriptor behind stdout
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return gone


def _quiet_disk_errors(args: threading.ExceptHookArgs) -> None:
    # A library's writer thread (TensorBoard's) meeting a full or failed disk: the command's own writes
    # meet it too and say so in one line, so the thread's traceback would only repeat it.
    if not isinstance(args.exc_value, OSError):
        threading.__excepthook__(args)


def _report_failure(e: Exception) -> int | None:
    """The exit status after the one line saying what failed; None for a bug (its traceback shows)."""
    from ddpg.run.loop import TrainingDiverged

    if isinstance(e, USER_ERRORS):
        return _fail(e, str(e), 2)
    if isinstance(e, TrainingDiverged | EnvFailure):
        return _fail(e, str(e), 1)
    if isinstance(e, OSError):
        status, message = file_error(e)
        return _fail(e, message, status)
    return None
