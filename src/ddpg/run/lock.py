"""One writer per run directory: an OS lock on `RUN/.lock`, held while a run is trained or resumed.

The lock is the kernel's (`flock`), so it dies with its process: a killed run never leaves a stale
lock behind. The holder writes its process id into the file, so a second writer can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = ".lock"


class RunInUse(RuntimeError):
    """Another process writes this run directory."""


class RunLock:
    """The held lock of one run directory; `release` (or the process's end) lets it go."""

    def __init__(self, root: Path, file: IO[str]) -> None:
        self.root, self._file = root, file

    @staticmethod
    def acquire(root: Path) -> RunLock:
        """Take `root`'s lock (creating `root`), or raise `RunInUse` naming the process that holds it."""
        root.mkdir(parents=True, exist_ok=True)
        file = (root / LOCK_FILE).open("a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            if holder == str(os.getpid()):
                raise RunInUse(
                    f"{root} is in use by another agent of this process; close() it first "
                    "(or use `with DDPG.resume(...) as agent:`)"
                ) from None
            raise RunInUse(f"{root} is in use by process {holder}; wait for it or stop it") from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        return RunLock(root, file)

    def holds(self, root: Path) -> bool:
        return not self._file.closed and self.root.resolve() == root.resolve()

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the descriptor releases the flock
