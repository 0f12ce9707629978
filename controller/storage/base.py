"""The Storage boundary: write-once objects under string keys.

Keys look like `data/ab/abcdef...`, `index/...`, `snapshots/...`, `keys/...`, `config`,
`locks/...`: a kind folder, then a name. Implementations map their failures to
ObjectNotFound, StorageUnavailable (transient, retried) or StorageError (permanent).
"""

from __future__ import annotations

import errno
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

_KEY = re.compile(r"^[a-z]+(/[A-Za-z0-9._-]+)*$")


def check_key(key: str) -> str:
    """Keys are a fixed alphabet so that every backend stores them the same way."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid object key {key!r}")
    return key


@dataclass(frozen=True)
class SpooledObject:
    """An object's bytes: the first `size` bytes of an open file, which its owner keeps open
    during the call. Packs are filled in unlinked files, as restic's packer does, so that a
    pack being filled or stored costs page cache, not the process's memory. Read by
    position: a retry, or a second reader, starts from the beginning again."""

    fd: int
    size: int

    def __len__(self) -> int:
        return self.size

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """`length` bytes from `offset` (to the end when None)."""
        wanted = self.size - offset if length is None else length
        data = os.pread(self.fd, wanted, offset)
        if len(data) != wanted:
            raise OSError(errno.EIO, f"its file ended early ({len(data)} of {wanted} bytes at {offset})")
        return data

    def parts(self, part_size: int) -> Iterator[bytes]:
        for offset in range(0, self.size, part_size):
            yield self.read(offset, min(part_size, self.size - offset))

    def reader(self) -> io.RawIOBase:
        """A file-like reader with a position of its own (an HTTP request's body)."""
        return _SpooledReader(self)

    def send_to(self, fd: int) -> None:
        """Copy the bytes to `fd` in the kernel (sendfile), at its position."""
        sent = 0
        while sent < self.size:
            copied = os.sendfile(fd, self.fd, sent, self.size - sent)
            if not copied:
                raise OSError(errno.EIO, f"its file ended early ({sent} of {self.size} bytes)")
            sent += copied


class _SpooledReader(io.RawIOBase):
    def __init__(self, spooled: SpooledObject) -> None:
        super().__init__()
        self._spooled, self._position = spooled, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._spooled.size}[whence]
        self._position = max(0, start + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = max(0, min(len(buffer), self._spooled.size - self._position))
        read = os.preadv(self._spooled.fd, [memoryview(buffer)[:wanted]], self._position) if wanted else 0
        self._position += read
        return read


Payload = bytes | SpooledObject


def payload_bytes(data: Payload, offset: int = 0, length: int | None = None) -> bytes:
    """`length` bytes of the object from `offset` (to its end when None), in memory."""
    if isinstance(data, SpooledObject):
        return data.read(offset, length)
    return data[offset:] if length is None else data[offset : offset + length]


def payload_parts(data: Payload, part_size: int) -> Iterator[bytes]:
    """The object in memory a part at a time when it is spooled; whole when it is bytes."""
    if isinstance(data, SpooledObject):
        yield from data.parts(part_size)
    else:
        yield data


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # as the storage reports it (aware, UTC)


class Storage(Protocol):
    """Write-once objects under keys. Knows nothing of blobs, packs or apps."""

    def save(self, key: str, data: Payload) -> bool:
        """Store `data` under `key` unless the key exists. True if written, False if it was there.
        A SpooledObject is only readable during the call: copy what is kept."""
        ...

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The object's bytes, or `length` bytes from `offset`. Raises ObjectNotFound."""
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix` (e.g. "snapshots/"), in no set order."""
        ...

    def remove(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    def remove_incomplete(self, started_before: datetime) -> int:
        """Drop writes abandoned by killed processes (temp files, multipart uploads) begun before
        `started_before`; how many were dropped. Only prune calls it, past its grace period."""
        ...

    def describe(self) -> str:
        """Where this storage is, for messages (never holds a secret)."""
        ...
