"""Backups and restores run here: at most `limit` at once, one at a time per app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from controller.errors import Busy

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, limit: int, on_done: Callable[[], None] = lambda: None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, limit), thread_name_prefix="work")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._on_done = on_done

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._busy

    def in_flight(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._busy)

    def submit(self, key: str, job: Callable[[], None]) -> bool:
        """Queue `job` unless work for `key` (an app) is queued or running; False then."""
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)
        self._pool.submit(self._run, key, job)
        return True

    @contextmanager
    def claim(self, key: str, what: str) -> Iterator[None]:
        """Hold `key` in the calling thread for a short piece of work (no worker is taken);
        raises Busy when work for `key` is queued or running."""
        with self._lock:
            if key in self._busy:
                raise Busy(f"{what}: work for {key} is queued or running; try again when it ends")
            self._busy.add(key)
        try:
            yield
        finally:
            with self._idle:
                self._busy.discard(key)
                self._idle.notify_all()

    def _run(self, key: str, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception:  # a job records its own outcome; this is a bug's last line of defence
            log.exception("work for %s failed unexpectedly", key)
        finally:
            with self._idle:
                self._busy.discard(key)
                self._idle.notify_all()
            self._on_done()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._busy, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
