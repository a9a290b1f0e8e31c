"""Writing files so that a kill never leaves half of one: temporary siblings renamed into place.

Everything a run directory holds is written through here: checkpoints (whole directories), result
files (summary.json, plots, videos, sweep reports) and the links `latest` and `best`. Work in
progress carries one of the prefixes below, so whatever a kill leaves behind is recognised and removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Names of work in progress; whatever carries them after a kill is safe to remove.
TMP, OLD, TRASH = ".tmp-", ".old-", ".trash-"


def atomic_directory(target: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh temporary sibling of `target`, then swap it in with renames."""
    make_parent(target)
    tmp = target.parent / f"{TMP}{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        _fsync_tree(tmp)
        if target.exists() or target.is_symlink():
            old = target.parent / f"{OLD}{target.name}-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True) if not old.is_symlink() else old.unlink()
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        renamed = _naming(e, tmp, target)
        if renamed is e:
            raise
        raise renamed from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; when the block ends without an error it replaces
    `path` whole, otherwise it is removed and `path` is left as it was. The temporary name keeps the
    suffix, so writers that choose a format by it (matplotlib, imageio) still do."""
    path = Path(path)
    make_parent(path)
    tmp = path.with_name(f"{TMP}{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        # Created here, so a place that cannot be written fails before any writer (ffmpeg) starts.
        tmp.touch(exist_ok=False)
        yield tmp
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        renamed = _naming(e, tmp, path)
        if renamed is e:
            raise
        raise renamed from e
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


def make_parent(path: Path) -> None:
    """Create `path`'s directory (and its parents); a file in the way is ENOTDIR, naming it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # a parent is a file: mkdir says "exists", the path means "not a dir"
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), e.filename) from e


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only place, where nothing was written either
        pass


def _naming(error: OSError, tmp: Path, target: Path) -> OSError:
    """`error` naming `target` where it names the temporary `tmp` (or a file in it) or no path at all:
    the path the user knows, not one that no longer exists."""
    name = error.filename if error.filename is not None else error.filename2
    if name is not None and not os.fsdecode(name).startswith(str(tmp)):
        return error
    return OSError(error.errno, error.strerror, str(target))


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` so that a reader, or a kill, never leaves half of it there."""
    with atomic_file(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


def point_link(link: Path, target_name: str) -> None:
    """Atomically make `link` a relative symlink to `target_name` (a sibling)."""
    tmp = link.parent / f"{TMP}link-{uuid.uuid4().hex[:8]}"
    os.symlink(target_name, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def _fsync_tree(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable across a power cut only once its directory is synced (a kill needs nothing).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def discard(path: Path) -> None:
    """Remove a checkpoint directory; renamed first, so a kill mid-delete leaves no half checkpoint
    under a checkpoint's name."""
    trash = path.parent / f"{TRASH}{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def remove_leftovers(directory: Path) -> None:
    """Remove what killed writes and deletes left behind (one writer per run directory), and put back a
    directory that a kill between `atomic_directory`'s two renames left only under its old name."""
    if not directory.is_dir():
        return
    for leftover in directory.glob(".*-*"):
        if leftover.name.startswith(OLD):
            original = directory / leftover.name.removeprefix(OLD).rsplit("-", 1)[0]
            if not original.exists() and not original.is_symlink():
                os.replace(leftover, original)
                continue
        if leftover.name.startswith((TMP, OLD, TRASH)):
            if leftover.is_symlink() or leftover.is_file():
                leftover.unlink(missing_ok=True)
            else:
                shutil.rmtree(leftover, ignore_errors=True)
