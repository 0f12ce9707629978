"""Repository locks as leases: shared for backup, restore and check; exclusive for prune and
key changes.

A lock is a write-once object `locks/<hash>` (sealed JSON: host, pid, purpose, exclusive).
Its age is the storage's own timestamp, so hosts with different clocks agree on it; a lock
not refreshed for `stale_after` is stale and ignored (and `unlock` removes it). Refreshing
writes a new lock object and then removes the old one. A holder that could not refresh in
time has lost its lease: `check()` raises, and every commit point (index files, snapshots)
calls it first, so a writer whose lease may have been taken over never commits.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.errors import LifeboatError, ObjectNotFound, RepositoryError
from controller.host import host_name
from controller.repository.crypto import AuthenticationFailed, MasterKey, content_hash
from controller.storage.base import ObjectInfo, Storage

LOCK_AAD = b"lifeboat lock v1"
STALE_AFTER = timedelta(minutes=30)
MAX_CLOCK_SKEW = timedelta(minutes=5)


class RepositoryLocked(RepositoryError):
    """Another process holds a conflicting lock."""

    code = "REPOSITORY_LOCKED"


class LeaseLost(RepositoryError):
    """This process's lock could not be refreshed in time; it must not commit anything."""

    code = "LEASE_LOST"


@dataclass(frozen=True)
class LockInfo:
    key: str
    exclusive: bool
    host: str
    pid: int
    purpose: str
    modified: datetime  # the storage's timestamp of the lock object
    stale: bool

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock by {self.purpose} on {self.host} (pid {self.pid}) since {self.modified:%Y-%m-%d %H:%M:%S}"


def list_locks(
    storage: Storage, master: MasterKey, now: datetime, stale_after: timedelta = STALE_AFTER
) -> list[LockInfo]:
    """Every lock object; unreadable ones count as stale exclusive locks (so unlock removes them)."""
    found = []
    for info in storage.list("locks/"):
        stale = now - info.modified > stale_after
        try:
            data = json.loads(master.open(storage.load(info.key), LOCK_AAD))
            found.append(
                LockInfo(
                    info.key,
                    bool(data["exclusive"]),
                    str(data["host"]),
                    int(data["pid"]),
                    str(data["purpose"]),
                    info.modified,
                    stale,
                )
            )
        except (AuthenticationFailed, ObjectNotFound, ValueError, KeyError):
            found.append(LockInfo(info.key, True, "?", 0, "unreadable lock", info.modified, True))
    return found


def remove_locks(
    storage: Storage, master: MasterKey, now: datetime, force: bool, stale_after: timedelta = STALE_AFTER
) -> list[LockInfo]:
    """Remove stale locks, or every lock with `force`; returns what was removed."""
    removed = [lock for lock in list_locks(storage, master, now, stale_after) if force or lock.stale]
    for lock in removed:
        storage.remove(lock.key)
    return removed


class Lease:
    """A held lock, refreshed in the background until released."""

    def __init__(
        self,
        storage: Storage,
        master: MasterKey,
        exclusive: bool,
        purpose: str,
        clock: Callable[[], datetime],
        stale_after: timedelta = STALE_AFTER,
        refresh_every: timedelta | None = None,
        max_skew: timedelta = MAX_CLOCK_SKEW,
    ) -> None:
        self.storage, self.master = storage, master
        self.exclusive, self.purpose = exclusive, purpose
        self.clock, self.stale_after, self.max_skew = clock, stale_after, max_skew
        self.refresh_every = refresh_every or stale_after / 6
        self.key: str | None = None
        self._refreshed_at = 0.0  # monotonic time of the last successful write
        self._lost: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def _write(self) -> str:
        body = json.dumps(
            {
                "exclusive": self.exclusive,
                "host": host_name(),
                "pid": os.getpid(),
                "purpose": self.purpose,
                "nonce": random.getrandbits(64),
            }
        ).encode()
        sealed = self.master.seal(body, LOCK_AAD)
        key = f"locks/{content_hash(sealed)}"
        self.storage.save(key, sealed)
        self._refreshed_at = time.monotonic()
        return key

    def acquire(self, wait: timedelta = timedelta(0), poll: float = 1.0) -> Lease:
        """Take the lock, waiting up to `wait` for conflicting holders. Raises RepositoryLocked."""
        deadline = time.monotonic() + wait.total_seconds()
        while True:
            self.key = self._write()
            self._check_skew(self.key)
            conflicts = self._conflicts()
            if not conflicts:
                break
            self.storage.remove(self.key)
            self.key = None
            if time.monotonic() >= deadline:
                holders = "; ".join(c.describe() for c in conflicts)
                raise RepositoryLocked(
                    f"{self.storage.describe()} is locked: {holders}. If that process is gone, "
                    f"`lifeboat repo unlock` removes stale locks (older than "
                    f"{int(self.stale_after.total_seconds() // 60)} min)"
                )
            time.sleep(poll * (0.5 + random.random()))  # jitter, so two waiting writers do not collide again
        self._thread = threading.Thread(target=self._refresh_loop, name="lock-refresh", daemon=True)
        self._thread.start()
        return self

    def _conflicts(self) -> list[LockInfo]:
        now = self.clock()
        return [
            lock
            for lock in list_locks(self.storage, self.master, now, self.stale_after)
            if lock.key != self.key and not lock.stale and (self.exclusive or lock.exclusive)
        ]

    def _check_skew(self, key: str) -> None:
        written: ObjectInfo = self.storage.stat(key)
        skew = abs(self.clock() - written.modified)
        if skew > self.max_skew:
            self.storage.remove(key)
            raise RepositoryError(
                f"{self.storage.describe()}: this host's clock differs from the storage's by "
                f"{int(skew.total_seconds())} s (more than {int(self.max_skew.total_seconds())} s); "
                "fix the clock (NTP) before writing"
            )

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_every.total_seconds()):
            try:
                self.refresh()
            except LifeboatError as err:
                with self._guard:
                    self._lost = err
                return

    def refresh(self) -> None:
        """Replace the lock object with a fresh one (write the new, then remove the old)."""
        with self._guard:
            old = self.key
            if old is None:
                return
            try:
                self.storage.stat(old)
            except ObjectNotFound:
                self._lost = LeaseLost(
                    f"{self.storage.describe()}: our {self.purpose} lock was removed "
                    "(by `unlock --force`?); stopping before anything is committed"
                )
                raise self._lost from None
            self.key = self._write()
            self.storage.remove(old)

    def check(self) -> None:
        """Raise LeaseLost unless the lease is known to be held; called before every commit."""
        with self._guard:
            if self._lost is not None:
                raise LeaseLost(f"lost the {self.purpose} lock: {self._lost}")
            if time.monotonic() - self._refreshed_at > (self.stale_after - self.refresh_every).total_seconds():
                raise LeaseLost(f"the {self.purpose} lock was not refreshed in time; others may treat it as stale")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._guard:
            if self.key is not None:
                self.storage.remove(self.key)
                self.key = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
