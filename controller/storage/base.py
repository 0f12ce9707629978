"""The Storage boundary: write-once objects under string keys.

Keys look like `data/ab/abcdef...`, `index/...`, `snapshots/...`, `keys/...`, `config`,
`locks/...`: a kind folder, then a name. Implementations map their failures to
ObjectNotFound, StorageUnavailable (transient, retried) or StorageError (permanent).
"""

from __future__ import annotations

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
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # as the storage reports it (aware, UTC)


class Storage(Protocol):
    """Write-once objects under keys. Knows nothing of blobs, packs or apps."""

    def save(self, key: str, data: bytes | memoryview) -> bool:
        """Store `data` under `key` unless the key exists. True if written, False if it was there.
        A view is only valid during the call (packs are views into reused buffers): copy what is kept."""
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
