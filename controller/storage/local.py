"""Objects as files under a directory: atomic, durable, write-once and read-only.

Save writes a temp file in the object's own directory, fsyncs it, then hard-links it to
the final name: link fails if the name exists, which makes put-if-absent atomic without
a rename that could replace an object. The temp name is removed afterwards, and the
directory is fsynced so that the new name survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from controller.durable import fsync_directory
from controller.errors import ObjectNotFound, StorageError, StorageFull, StorageUnavailable
from controller.storage.base import ObjectInfo, Payload, SpooledObject, check_key

_PERMANENT = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
_TEMP_PREFIX = ".tmp-"


def _translate(err: OSError, what: str) -> Exception:
    if err.errno == errno.ENOENT:
        return ObjectNotFound(f"{what}: not found")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"{what}: {err.strerror}")
    if err.errno in _PERMANENT:
        return StorageError(f"{what}: {err.strerror}")
    return StorageUnavailable(f"{what}: {err.strerror}")


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def save(self, key: str, data: Payload) -> bool:
        path = self._path(key)
        temp = path.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:
                os.close(fd)
                os.unlink(temp)  # a half-written temporary must not keep the space it took
                raise
            os.close(fd)
            try:
                os.link(temp, path)
                created = True
            except FileExistsError:
                created = False
            finally:
                os.unlink(temp)
            fsync_directory(path.parent)
            return created
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                free = shutil.disk_usage(self.root).free if self.root.exists() else 0
                raise StorageFull(
                    f"no space left in {self.root}: saving {key} needed {len(data)} bytes, {free} bytes are free"
                ) from None
            raise _translate(err, f"{self.root}: saving {key}") from None

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            with self._path(key).open("rb") as handle:
                if offset:
                    handle.seek(offset)
                return handle.read() if length is None else handle.read(length)
        except OSError as err:
            raise _translate(err, f"{self.root}: loading {key}") from None

    def stat(self, key: str) -> ObjectInfo:
        try:
            info = self._path(key).stat()
        except OSError as err:
            raise _translate(err, f"{self.root}: {key}") from None
        return ObjectInfo(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        folder, _, _ = prefix.rpartition("/")
        base = self.root / folder if folder else self.root
        if not base.exists():
            return

        def fail(err: OSError) -> None:
            raise err  # prune must never act on a partial listing

        try:
            for directory, _subdirs, files in os.walk(base, onerror=fail):
                for name in files:
                    if name.startswith(_TEMP_PREFIX):
                        continue
                    full = Path(directory) / name
                    key = full.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            info = full.stat()
                            yield ObjectInfo(key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))
        except OSError as err:
            raise _translate(err, f"{self.root}: listing {prefix}") from None

    def remove_incomplete(self, started_before: datetime) -> int:
        removed = 0
        for directory, _subdirs, files in os.walk(self.root):
            for name in files:
                temp = Path(directory) / name
                if not name.startswith(_TEMP_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if datetime.fromtimestamp(temp.stat().st_mtime, UTC) < started_before:
                        temp.unlink()
                        removed += 1
        return removed

    def remove(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
            fsync_directory(path.parent)
        except FileNotFoundError:
            return
        except OSError as err:
            raise _translate(err, f"{self.root}: removing {key}") from None


def _write_all(fd: int, data: Payload) -> None:
    if isinstance(data, SpooledObject):
        data.send_to(fd)
        return
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
