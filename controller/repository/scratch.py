"""ScratchFile: an unlinked file beside the local cache, for what a job would otherwise hold
in memory (the index's records, packs being filled), gone when it is closed or dropped.

Beside the local cache, not in /tmp: /tmp may be memory (a tmpfs in the Compose
deployment). Its failures are StorageErrors naming the folder, not OSErrors: a backup
reports an OSError raised while it reads a file as that file being unreadable, and goes
on, which would hide a full scratch disk behind a list of skipped files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from controller.errors import StorageError
from controller.repository.object_cache import scratch_parent


class ScratchFile:
    def __init__(self, holds: str) -> None:
        """`holds`: what the file is for, as a message's subject ("packs being filled").
        A cache folder that refuses the file (read-only, another user's) leaves it to the
        system's temporary folder: a backup must not fail where it can go on."""
        self._holds = holds
        system = Path(tempfile.gettempdir())
        self._folder = scratch_parent() or system
        refused: str | None = None
        for folder in dict.fromkeys([self._folder, system]):
            try:
                # lives as long as its owner, not a block: no context manager
                self._file = tempfile.TemporaryFile(prefix="lifeboat-", dir=folder)  # noqa: SIM115
            except OSError as err:
                refused = refused or err.strerror
                continue
            self._folder = folder
            return
        raise self._failed(refused)

    def fileno(self) -> int:
        return self._file.fileno()

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view, written = memoryview(data), 0
        try:
            while written < len(view):
                written += os.pwrite(self._file.fileno(), view[written:], offset + written)
        except OSError as err:
            raise self._failed(err.strerror) from None

    def read(self, offset: int, size: int) -> bytes:
        try:
            data = os.pread(self._file.fileno(), size, offset)
        except OSError as err:
            raise self._failed(err.strerror) from None
        if len(data) != size:
            raise self._failed(f"its file ended early ({len(data)} of {size} bytes at {offset})")
        return data

    def close(self) -> None:
        self._file.close()

    def _failed(self, reason: str | None) -> StorageError:
        return StorageError(
            f"{self._holds} cannot be kept in {self._folder}: {reason}; "
            "free room there or set LIFEBOAT_CACHE_DIR to a folder on a disk with room"
        )
