"""The controller's delivery of notices (DESIGN.md §3: notifications leave from a queue and
never block a run). A poller reads this host's new notices from the catalog's outbox (any
process may have written them: the controller's runs, the API, a CLI command), turns each
into a Message with its secrets taken out, and hands it to the courier of every Notifier
that selects it. The cursor is kept in the catalog: a restarted controller goes on where it
stopped. A message still queued when the controller dies is lost; the notice stays."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace

from controller.catalog.models import Notice
from controller.errors import InvalidConfig, LifeboatError
from controller.host import host_name
from controller.notify.destination import destination_for
from controller.notify.message import Message
from controller.notify.redact import redact
from controller.notify.selection import selects
from controller.reconciler.courier import Courier, DeliveryState
from controller.reconciler.runtime import Runtime
from controller.resources.loader import LoadResult
from controller.resources.notifier import Notifier, NotifierStatus
from controller.resources.secrets import read_secret, secret_refs

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
_FAMILIES = {"Backup": "backups", "Restore": "restores", "Drill": "drills"}  # event prefix → its API collection


class Notifications:
    def __init__(self, runtime: Runtime, environ: Mapping[str, str], retry_wait: float = 2.0) -> None:
        self.runtime, self.environ, self.retry_wait = runtime, environ, retry_wait
        self.notifiers: dict[str, Notifier] = {}
        self.couriers: dict[str, Courier] = {}
        self.problems: dict[str, str] = {}  # Notifier → why it cannot send (a secret that cannot be read)
        self._labels: dict[tuple[str, str], dict[str, str]] = {}  # (kind, name) → labels
        self._secrets: list[str] = []
        self._cursor: int | None = None
        self._updated = False  # no notice is taken before the Notifiers are known (the first pass)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, loaded: LoadResult) -> None:
        """The Notifiers, labels and secrets as the resources declare them now (each pass)."""
        secrets: set[str] = set()
        labels: dict[tuple[str, str], dict[str, str]] = {}
        notifiers: dict[str, Notifier] = {}
        for item in loaded.resources:
            labels[(item.kind, item.name)] = dict(item.resource.metadata.labels)
            for ref in secret_refs(item.resource.spec):
                try:
                    secrets.add(read_secret(ref, self.environ, "secret").decode(errors="replace"))
                except InvalidConfig:
                    continue
            if isinstance(item.resource, Notifier):
                notifiers[item.name] = item.resource
        if self._cursor is None:  # from the first pass on, nothing announced is missed
            self._cursor = self.runtime.catalog.notice_cursor(host_name())
        with self._lock:
            self._secrets, self._labels, self.notifiers = sorted(secrets), labels, notifiers
            for name in set(self.couriers) - set(notifiers):
                self.couriers.pop(name).stop()
            for name, notifier in notifiers.items():
                self._keep_courier(name, notifier)
            self._updated = True

    def _keep_courier(self, name: str, notifier: Notifier) -> None:
        """Built again each pass: a secret rotated in its file or variable is used from then on."""
        try:
            destination = destination_for(name, notifier.spec, self.environ)
        except InvalidConfig as err:
            self.problems[name] = str(err)
            return
        self.problems.pop(name, None)
        limit = notifier.spec.effective_rate_limit
        if name in self.couriers:
            self.couriers[name].reconfigure(destination, limit)
        else:
            state = _seeded(notifier.status)
            self.couriers[name] = Courier(name, destination, limit, self.runtime, state, self.retry_wait)

    def courier(self, name: str) -> Courier | None:
        with self._lock:
            return self.couriers.get(name)

    def poll(self) -> int:
        """Hand this host's new notices to the couriers; returns how many were read."""
        if not self._updated or self._cursor is None:
            return 0
        host = host_name()
        notices = self.runtime.catalog.notices_after(host, self._cursor)
        for notice in notices:
            self._route(notice)
        if notices:
            self._cursor = notices[-1].id or self._cursor
            self.runtime.catalog.move_notice_cursor(host, self._cursor)
        return len(notices)

    def _route(self, notice: Notice) -> None:
        with self._lock:
            told = message_for(notice, self._secrets)  # redacted once, named per Notifier below
            for name, courier in self.couriers.items():
                message = replace(told, notifier=name)
                owner = ("BackupPolicy", message.policy) if message.policy else ("BackupStorage", message.storage)
                if selects(self.notifiers[name].spec, message, self._labels.get(owner, {})):
                    courier.post(message)

    def start(self) -> None:
        """Poll in the background until stop()."""

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.poll()
                except LifeboatError as err:  # the catalog is away: the notices wait there
                    log.warning("reading notices for the Notifiers failed: %s", err)
                self._stop.wait(POLL_SECONDS)

        self._thread = threading.Thread(target=run, name="notifications", daemon=True)
        self._thread.start()

    def drain(self, timeout: float = 60.0) -> bool:
        """Poll now and wait until every courier is idle (`controller --once`, tests)."""
        self.poll()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                couriers = list(self.couriers.values())
            if all(courier.idle() for courier in couriers):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for courier in self.couriers.values():
                courier.stop()


def _seeded(status: NotifierStatus | None) -> DeliveryState:
    if status is None:
        return DeliveryState()
    last = status.last_delivery
    return DeliveryState(
        delivered=status.delivered,
        failed=status.failed,
        suppressed=status.suppressed,
        last_delivery=(last.time, last.event, last.subject) if last else None,
        last_error=status.last_error,
    )


def api_path(notice: Notice) -> str:
    """The object's path in the REST API: the backup, restore or drill; a policy's backups."""
    family = next((prefix for prefix in _FAMILIES if notice.event.startswith(prefix)), "")
    if family and notice.object_id:
        return f"/api/v1/{_FAMILIES[family]}/{notice.object_id}"
    return f"/api/v1/backups?policy={notice.policy}" if notice.policy else ""


def message_for(notice: Notice, secrets: list[str]) -> Message:
    """The notice as the Notifiers send it: its text without any secret the resources name."""
    ids = {family: notice.object_id if notice.event.startswith(family) else "" for family in _FAMILIES}
    return Message(
        id=f"{notice.host}:{notice.id}",
        event=notice.event,
        state=notice.state,
        time=notice.time,
        host=notice.host,
        kind=notice.kind,
        name=notice.name,
        text=redact(notice.message, secrets),
        app=notice.app,
        policy=notice.policy,
        storage=notice.storage,
        backup=ids["Backup"],
        restore=ids["Restore"],
        drill=ids["Drill"],
        path=api_path(notice),
    )
