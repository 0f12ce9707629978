"""Storage wrappers for tests. They wrap a real Storage; none replaces one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from controller.storage.base import ObjectInfo, Payload, Storage


class RecordingStorage:
    """Passes every call through and records the keys saved, in order."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.saved: list[str] = []

    def save(self, key: str, data: Payload) -> bool:
        created = self.inner.save(key, data)
        self.saved.append(key)
        return created

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self.inner.load(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def remove(self, key: str) -> None:
        self.inner.remove(key)

    def remove_incomplete(self, started_before: datetime) -> int:
        return self.inner.remove_incomplete(started_before)

    def describe(self) -> str:
        return f"recording({self.inner.describe()})"


class CountingStorage(RecordingStorage):
    """Counts every request by operation, and remembers the keys loaded."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.requests: Counter[str] = Counter()
        self.loaded: list[str] = []

    def save(self, key: str, data: Payload) -> bool:
        self.requests["save"] += 1
        return super().save(key, data)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self.requests["load"] += 1
        self.loaded.append(key)
        return super().load(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        self.requests["stat"] += 1
        return super().stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.requests["list"] += 1
        return super().list(prefix)

    def remove(self, key: str) -> None:
        self.requests["remove"] += 1
        super().remove(key)

    def reset(self) -> None:
        self.requests.clear()
        self.loaded.clear()
