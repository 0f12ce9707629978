"""The only place storage calls are retried: transient failures (StorageUnavailable) get
bounded exponential backoff with jitter; everything else fails at once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from controller.errors import StorageUnavailable
from controller.storage.base import ObjectInfo, Payload, Storage

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetryingStorage:
    def __init__(
        self,
        inner: Storage,
        attempts: int = 6,
        max_seconds: float = 120.0,
        initial_wait: float = 0.5,
        max_wait: float = 20.0,
        on_retry: Callable[[str, int, BaseException], None] | None = None,
    ) -> None:
        self.inner = inner
        self._attempts, self._max_seconds = attempts, max_seconds
        self._initial_wait, self._max_wait = initial_wait, max_wait
        self._on_retry = on_retry

    def _retrying(self, what: str) -> Retrying:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("retrying %s (attempt %d): %s", what, state.attempt_number, error)
            if self._on_retry is not None and error is not None:
                self._on_retry(what, state.attempt_number, error)

        return Retrying(
            retry=retry_if_exception_type(StorageUnavailable),
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._max_seconds),
            # Exponential backoff plus up to one initial wait of jitter, so many writers spread out.
            wait=wait_exponential(multiplier=self._initial_wait, max=self._max_wait)
            + wait_random(0, self._initial_wait),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _call(self, what: str, function: Callable[[], T]) -> T:
        return self._retrying(what)(function)

    def save(self, key: str, data: Payload) -> bool:
        return self._call(f"saving {key}", lambda: self.inner.save(key, data))

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(f"loading {key}", lambda: self.inner.load(key, offset, length))

    def stat(self, key: str) -> ObjectInfo:
        return self._call(f"stat {key}", lambda: self.inner.stat(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # A listing is retried whole: a partial listing must never be acted on.
        return iter(self._call(f"listing {prefix}", lambda: list(self.inner.list(prefix))))

    def remove(self, key: str) -> None:
        self._call(f"removing {key}", lambda: self.inner.remove(key))

    def remove_incomplete(self, started_before: datetime) -> int:
        return self._call("removing incomplete writes", lambda: self.inner.remove_incomplete(started_before))

    def describe(self) -> str:
        return self.inner.describe()
