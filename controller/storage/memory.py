"""An in-memory Storage: a real implementation (not a mock) for fast unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from controller.errors import ObjectNotFound
from controller.storage.base import ObjectInfo, Payload, check_key, payload_bytes


class MemoryStorage:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        """`clock` gives objects their modification times (a fixed instant by default)."""
        self._objects: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()
        self._clock = clock or (lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def save(self, key: str, data: Payload) -> bool:
        check_key(key)
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (payload_bytes(data), self._clock())
            return True

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with self._lock:
            found = self._objects.get(check_key(key))
        if found is None:
            raise ObjectNotFound(f"memory: {key} not found")
        data = found[0]
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def stat(self, key: str) -> ObjectInfo:
        with self._lock:
            found = self._objects.get(check_key(key))
        if found is None:
            raise ObjectNotFound(f"memory: {key} not found")
        return ObjectInfo(key, len(found[0]), found[1])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            items = [(k, v) for k, v in self._objects.items() if k.startswith(prefix)]
        for key, (data, modified) in items:
            yield ObjectInfo(key, len(data), modified)

    def remove(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)

    def remove_incomplete(self, started_before: datetime) -> int:
        return 0  # a save here is never seen half done

    def describe(self) -> str:
        return "memory"

    def replace_for_test(self, key: str, data: bytes) -> None:
        """Overwrite an object in place: only fault-injection tests corrupt data this way."""
        with self._lock:
            self._objects[key] = (data, self._objects[key][1])
