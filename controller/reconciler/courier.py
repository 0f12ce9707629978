"""One Notifier's deliveries: its own queue and thread, so that a destination that hangs or
refuses holds up no other Notifier and no run. Each message is tried a bounded number of
times (tenacity, with backoff); the rate limit leaves out what is over it, and the next
message sent says how many; the outcome is kept for the Notifier's status, and a message
given up on is an event on the Notifier."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from controller.errors import DeliveryFailed
from controller.notify.destination import Destination
from controller.notify.message import Message
from controller.reconciler.runtime import Runtime
from controller.resources.notifier import RateLimit

log = logging.getLogger(__name__)
ATTEMPTS = 4  # a message is tried this many times, then given up on
QUEUE_LIMIT = 1000  # messages waiting; more are left out like those over the rate limit


@dataclass
class DeliveryState:
    """What the Notifier's status shows. Seeded from the status last written, so the counts
    go on across controller restarts."""

    delivered: int = 0
    failed: int = 0
    suppressed: int = 0
    last_delivery: tuple[datetime, str, str] | None = None  # time, event (state), subject
    last_error: str | None = None
    failing: bool = False  # the latest message was given up on


class RateWindow:
    """At most `messages` in any `per_minutes` window, on this process's monotonic clock."""

    def __init__(self, limit: RateLimit | None) -> None:
        self.limit = limit
        self._sent: deque[float] = deque()

    def admit(self) -> bool:
        if self.limit is None:
            return True
        now, window = time.monotonic(), self.limit.per_minutes * 60.0
        while self._sent and now - self._sent[0] >= window:
            self._sent.popleft()
        if len(self._sent) >= self.limit.messages:
            return False
        self._sent.append(now)
        return True


class Courier:
    def __init__(
        self,
        name: str,
        destination: Destination,
        rate_limit: RateLimit | None,
        runtime: Runtime,
        state: DeliveryState,
        retry_wait: float = 2.0,
    ) -> None:
        self.name, self.destination, self.runtime, self.state = name, destination, runtime, state
        self.window = RateWindow(rate_limit)
        self.retry_wait = retry_wait
        self._queue: queue.Queue[Message | None] = queue.Queue(QUEUE_LIMIT)
        self._left_out = 0  # since the last message sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"notifier-{name}", daemon=True)
        self._thread.start()

    def post(self, message: Message) -> None:
        """Queue a message; never blocks. A full queue leaves it out (counted)."""
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self._count_left_out(message, "its queue is full")

    def reconfigure(self, destination: Destination, rate_limit: RateLimit | None) -> None:
        """The spec changed: messages still queued go to the new destination."""
        self.destination = destination
        if rate_limit != self.window.limit:
            self.window = RateWindow(rate_limit)

    def idle(self) -> bool:
        """Every message posted has been sent, given up on or left out."""
        return self._queue.unfinished_tasks == 0

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)

    def deliver(self, message: Message) -> None:
        """Send with retries (DeliveryFailed only, with backoff); raises the last failure."""
        for attempt in Retrying(
            retry=retry_if_exception_type(DeliveryFailed),
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=self.retry_wait, max=300),
            sleep=self._pause,
            before_sleep=lambda s: log.info("notifier %s: attempt %d failed, retrying", self.name, s.attempt_number),
            reraise=True,
        ):
            with attempt:
                self.destination.send(message)

    def _pause(self, seconds: float) -> None:
        """Between attempts; stop() cuts it short."""
        self._stop.wait(seconds)

    def _serve(self) -> None:
        while not self._stop.is_set():
            message = self._queue.get()
            if message is None:
                return
            try:
                self._send(message)
            except Exception:  # a bug in a destination must not end this Notifier's thread
                log.exception("notifier %s: sending %s failed", self.name, message.event)
            finally:
                self._queue.task_done()

    def _send(self, message: Message) -> None:
        if not self.window.admit():
            self._count_left_out(message, "over the rate limit")
            return
        message = replace(message, suppressed=self._left_out)
        subject = f"{message.kind}/{message.name}"
        what = message.event if message.state in ("firing", "info", "test") else f"{message.event} ({message.state})"
        try:
            self.deliver(message)
        except DeliveryFailed as err:
            self.state.failed += 1
            self.state.last_error, self.state.failing = str(err), True
            told = f"{what} about {subject} given up after {ATTEMPTS} attempts: {err}"
            log.warning("notifier %s: %s", self.name, told)
            self.runtime.event("Notifier", self.name, "DeliveryFailed", told, True)
            return
        self._left_out = 0
        self.state.delivered += 1
        self.state.last_delivery, self.state.failing = (self.runtime.clock(), what, subject), False
        log.info("notifier %s: sent %s about %s", self.name, what, subject)

    def _count_left_out(self, message: Message, why: str) -> None:
        self._left_out += 1
        self.state.suppressed += 1
        log.warning(
            "notifier %s: %s about %s/%s not sent: %s", self.name, message.event, message.kind, message.name, why
        )
