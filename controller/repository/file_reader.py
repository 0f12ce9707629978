"""Read one file of a snapshot as a stream: database dumps are fed to a restore tool this way."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from controller.repository.records import Node, NodeType
from controller.repository.repository import Repository


class _BlobReader(io.RawIOBase):
    """A file object over a node's content blobs, fetched lazily in order."""

    def __init__(self, blobs: Iterator[bytes]) -> None:
        self._blobs = blobs
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._blobs)
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


def open_content(repository: Repository, node: Node) -> BinaryIO:
    """The file's bytes, read and authenticated blob by blob (memory stays at a few blobs)."""
    if node.type != NodeType.FILE:
        raise ValueError(f"{node.name} is not a regular file")
    blobs = repository.load_blobs([bytes.fromhex(c) for c in node.content])
    return io.BufferedReader(_BlobReader(blobs), 1024 * 1024)
