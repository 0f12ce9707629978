"""Replace a file so that readers see the old bytes or the new ones, never a mix."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from controller.durable import fsync_directory


def write_atomically(path: Path, text: str, mode: int | None = None) -> None:
    """Temp file in the same directory, fsync, rename over, fsync the directory.

    The file keeps its permission bits (a new one gets `mode`, default 0644); a crash at any
    point leaves the old file or the new one, plus at worst a hidden temp file that no loader
    reads (its name starts with a dot).
    """
    if path.exists():
        mode = path.stat().st_mode & 0o7777
    elif mode is None:
        mode = 0o644
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(path.parent)


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Serialise Lifeboat's writers (controller, API, CLI) on one directory.

    flock on the directory itself: no lock file appears in a git-managed tree, and a
    rename inside the directory does not invalidate the lock as it would on the file.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
