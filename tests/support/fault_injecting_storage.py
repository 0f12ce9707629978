"""FaultInjectingStorage: wraps a real Storage and injects failures at chosen points.

A fake by design, for fault injection only: it fails (transiently or permanently), delays,
truncates, flips bits and "cuts connections" on the calls a rule selects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from controller.errors import StorageError, StorageFull, StorageUnavailable
from controller.storage.base import ObjectInfo, Payload, Storage


@dataclass
class Fault:
    operation: str  # "save", "load", "list", "remove", "stat"
    matches: Callable[[str], bool] = lambda key: True
    kind: str = "transient"  # transient | permanent | full | delay | truncate | flip | cut
    times: int = 1  # how many matching calls are affected (then the rule is spent)
    skip: int = 0  # let this many matching calls through first
    delay: float = 0.0
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)


class FaultInjectingStorage:
    def __init__(self, inner: Storage, faults: list[Fault] | None = None) -> None:
        self.inner = inner
        self.faults = list(faults or [])
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most save/load calls running at once (with "delay" faults: latency)

    def _fault_for(self, operation: str, key: str) -> Fault | None:
        with self._lock:
            self.calls.append((operation, key))
            for fault in self.faults:
                if fault.operation != operation or not fault.matches(key) or fault.fired >= fault.times:
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.fired += 1
                return fault
        return None

    @staticmethod
    def _raise(fault: Fault, what: str) -> None:
        if fault.kind == "transient":
            raise StorageUnavailable(f"injected: {what} failed (transient)")
        if fault.kind == "cut":
            raise StorageUnavailable(f"injected: connection cut during {what}")
        if fault.kind == "permanent":
            raise StorageError(f"injected: {what} failed (permanent)")
        if fault.kind == "full":
            raise StorageFull(f"injected: {what}: no space left")
        if fault.kind == "delay":
            time.sleep(fault.delay)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def save(self, key: str, data: Payload) -> bool:
        self._enter()
        try:
            return self._save(key, data)
        finally:
            self._leave()

    def _save(self, key: str, data: Payload) -> bool:
        fault = self._fault_for("save", key)
        if fault is not None:
            if fault.kind == "cut":
                # The bytes arrive but the answer is lost: the caller sees an error.
                self.inner.save(key, data)
            self._raise(fault, f"saving {key}")
        return self.inner.save(key, data)

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self._enter()
        try:
            return self._load(key, offset, length)
        finally:
            self._leave()

    def _load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        fault = self._fault_for("load", key)
        data = self.inner.load(key, offset, length)
        if fault is None:
            return data
        if fault.kind == "truncate":
            return data[: len(data) // 2]
        if fault.kind == "flip":
            flipped = bytearray(data)
            flipped[len(flipped) // 2] ^= 0x40
            return bytes(flipped)
        self._raise(fault, f"loading {key}")
        return data

    def stat(self, key: str) -> ObjectInfo:
        fault = self._fault_for("stat", key)
        if fault is not None:
            self._raise(fault, f"stat {key}")
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        fault = self._fault_for("list", prefix)
        items = list(self.inner.list(prefix))
        if fault is not None:
            if fault.kind == "cut":
                yield from items[: len(items) // 2]  # part of the listing, then the connection drops
            self._raise(fault, f"listing {prefix}")
        yield from items

    def remove(self, key: str) -> None:
        fault = self._fault_for("remove", key)
        if fault is not None:
            self._raise(fault, f"removing {key}")
        self.inner.remove(key)

    def remove_incomplete(self, started_before: datetime) -> int:
        return self.inner.remove_incomplete(started_before)

    def describe(self) -> str:
        return f"fault-injecting({self.inner.describe()})"
