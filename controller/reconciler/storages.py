"""The BackupStorage reconciler: is the repository reachable, how many backups and bytes it
holds, and its maintenance (prune, check) on the storage's schedules.

A pass costs a constant number of storage requests whatever the repository holds: the
backup count comes from the catalog and the size from the last measurement (taken once
per process, then after each write), so no snapshot is read here."""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from controller.catalog.catalog import BackupFilter
from controller.catalog.models import BackupStatus
from controller.errors import LifeboatError
from controller.reconciler.backup_run import LOCK_WAIT
from controller.reconciler.notices import Subject, condition_changed
from controller.reconciler.runtime import Runtime, StorageRepositories, wall_clock
from controller.reconciler.schedule_plan import next_run_after
from controller.reconciler.status import StatusWriter
from controller.reconciler.work_queue import WorkQueue
from controller.repository.checker import Checker
from controller.repository.pruner import Pruner
from controller.resources.backup_storage import BackupStorage, BackupStorageStatus, CheckResult
from controller.resources.loader import LoadedResource
from controller.resources.meta import find_condition, set_condition
from controller.resources.notifier import NotifierEvent as Ev

log = logging.getLogger(__name__)


CYCLE_COMPLETED = "read-data cycle completed"


def read_data_window(cycle_days: int, since: datetime | None, now: datetime) -> tuple[tuple[float, float], bool]:
    """The share of a rolling read-data cycle a check reads: from where the previous good
    check stopped to where the cycle is now (wrapping past its end); everything when there
    was none, or a whole cycle passed since. And whether this check completes a cycle."""
    cycle = cycle_days * 86400.0
    if since is None or (now - since).total_seconds() >= cycle:
        return (0.0, 1.0), True
    start, end = (since.timestamp() % cycle) / cycle, (now.timestamp() % cycle) / cycle
    return (start, end), end < start


class StorageReconciler:
    def __init__(
        self, runtime: Runtime, repositories: StorageRepositories, queue: WorkQueue, status: StatusWriter
    ) -> None:
        self.runtime, self.repositories, self.queue, self.status = runtime, repositories, queue, status

    def reconcile(self, item: LoadedResource) -> None:
        storage = item.resource
        assert isinstance(storage, BackupStorage)
        name = storage.metadata.name
        old = storage.status or BackupStorageStatus()
        status = old.model_copy(deep=True)
        status.observed_generation = item.generation
        try:
            repository = self.repositories.open(name)
            status.reachable = True
            status.snapshots = self.runtime.catalog.count_backups(
                BackupFilter(storage=name, status=BackupStatus.COMPLETED)
            )
            status.size_bytes = self.repositories.size(name, repository)
            condition = self.status.condition("Ready", True, "Reachable", "the repository opens", item)
            problem = None
        except LifeboatError as err:
            status.reachable = False
            condition = self.status.condition("Ready", False, err.__class__.__name__, str(err), item)
            problem = f"storage {name}: {err}"
        subject = Subject("BackupStorage", name, storage=name)
        condition_changed(self.runtime, Ev.STORAGE_UNREACHABLE, subject, problem, f"storage {name} is reachable again")
        status.conditions = set_condition(old.conditions, condition)
        self._schedule_maintenance(storage, status)
        self.status.write(item, status)

    def _schedule_maintenance(self, storage: BackupStorage, status: BackupStorageStatus) -> None:
        """Prune and check on the storage's schedules. Outcomes are catalog events, from which
        status.lastPrune and status.lastCheck are read (so a crashed job never fakes one)."""
        name, now = storage.metadata.name, self.runtime.clock()
        events = self.runtime.catalog.events_for("BackupStorage", name, limit=50)
        pruned = [e for e in events if e.reason == "Pruned"]
        checked = [e for e in events if e.reason in ("Checked", "CheckFailed")]
        status.last_prune = pruned[-1].time if pruned else status.last_prune
        if checked:
            last = checked[-1]
            status.last_check = CheckResult(time=last.time, ok=last.reason == "Checked", message=last.message)
        cycles = [e for e in events if e.reason == "Checked" and CYCLE_COMPLETED in e.message]
        status.read_data_cycle_completed_at = cycles[-1].time if cycles else status.read_data_cycle_completed_at
        read_up_to = next((e.time for e in reversed(events) if e.reason == "Checked"), None)
        ready = find_condition(status.conditions, "Ready")
        since = ready.last_transition_time if ready is not None else now
        maintenance = storage.spec.maintenance
        for what, schedule, last_time in (
            ("prune", maintenance.prune, status.last_prune),
            ("check", maintenance.check, status.last_check.time if status.last_check else None),
        ):
            if schedule is not None and next_run_after(schedule, last_time or since) <= now:
                self.queue.submit(f"storage:{name}", functools.partial(self.maintain, storage, what, read_up_to))

    def maintain(self, storage: BackupStorage, what: str, read_up_to: datetime | None = None) -> None:
        """Prune or check the storage's repository; the outcome is an event. `read_up_to`:
        the last check that read its window without damage (rolling verification)."""
        name = storage.metadata.name
        try:
            repository = self.repositories.open(name)
            if what == "prune":
                with repository.locked(True, "prune", wall_clock, LOCK_WAIT):
                    report = Pruner(repository, wall_clock()).prune()
                message = (
                    f"freed {report.bytes_freed} bytes "
                    f"({report.packs_deleted} packs deleted, {report.packs_repacked} repacked)"
                ) + (f"; {report.grace_note()}" if report.grace_note() else "")
                self.runtime.event("BackupStorage", name, "Pruned", message)
                self.repositories.measure(name, repository)
                return
            maintenance, completes, window = storage.spec.maintenance, False, None
            if maintenance.read_data_cycle_days is not None:
                window, completes = read_data_window(maintenance.read_data_cycle_days, read_up_to, self.runtime.clock())
            with repository.locked(False, "check", wall_clock, LOCK_WAIT):
                checked = Checker(repository).check(maintenance.check_read_data_percent, read_data_window=window)
            if checked.ok:
                message = (
                    f"{checked.snapshots} snapshots, {checked.packs} packs, {checked.packs_read} packs read: no damage"
                ) + (f"; {CYCLE_COMPLETED}" if completes else "")
                self.runtime.event("BackupStorage", name, "Checked", message)
                self._check_told(name, None, f"check of storage {name}: {message}")
            else:
                damage = "; ".join(d.describe() for d in checked.damage[:5])
                self.runtime.event("BackupStorage", name, "CheckFailed", damage, True)
                self._check_told(name, f"check of storage {name} found damage: {damage}", "")
        except LifeboatError as err:
            log.warning("%s of storage %s failed: %s", what, name, err)
            reason = "CheckFailed" if what == "check" else "PruneFailed"
            self.runtime.event("BackupStorage", name, reason, str(err), True)
            if what == "check":
                self._check_told(name, f"check of storage {name} failed: {err}", "")

    def _check_told(self, name: str, problem: str | None, fixed: str) -> None:
        subject = Subject("BackupStorage", name, storage=name)
        condition_changed(self.runtime, Ev.CHECK_FAILED, subject, problem, fixed)
