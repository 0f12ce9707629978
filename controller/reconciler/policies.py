"""The BackupPolicy reconciler: start a policy's backup when its schedule says so, and derive
its status from the catalog (a status never claims more than the catalog knows)."""

from __future__ import annotations

import contextlib
from datetime import datetime

from controller.catalog.catalog import BackupFilter
from controller.catalog.models import Backup, BackupStatus, DrillResult
from controller.errors import LifeboatError
from controller.reconciler.backup_run import BackupRequest, BackupRunner
from controller.reconciler.drill_run import DrillRequest, DrillRunner
from controller.reconciler.notices import Subject, condition_changed
from controller.reconciler.overdue import overdue_at
from controller.reconciler.runtime import Runtime
from controller.reconciler.schedule_plan import plan_schedule
from controller.reconciler.status import StatusWriter
from controller.reconciler.work_queue import WorkQueue
from controller.resources.backup_policy import BackupCounts, BackupPolicy, BackupPolicyStatus, LastBackup, LastDrill
from controller.resources.loader import LoadedResource
from controller.resources.meta import find_condition, set_condition
from controller.resources.notifier import NotifierEvent as Ev

STALLED_AFTER = 3  # failed runs in a row that make a policy Stalled


class PolicyReconciler:
    def __init__(self, runtime: Runtime, queue: WorkQueue, status: StatusWriter) -> None:
        self.runtime, self.queue, self.status = runtime, queue, status

    def reconcile(self, item: LoadedResource, storages: set[str]) -> datetime | None:
        """Start the backup when due; write the status. Returns the policy's next run time."""
        policy = item.resource
        assert isinstance(policy, BackupPolicy)
        old = policy.status or BackupPolicyStatus()
        status = old.model_copy(deep=True)
        name = policy.metadata.name
        storage_found = policy.spec.storage in storages
        if not storage_found:
            message = f'no BackupStorage "{policy.spec.storage}"'
            ready = self.status.condition("Ready", False, "StorageNotFound", message, item)
        else:
            ready = self.status.condition("Ready", True, "Scheduled" if policy.spec.schedule else "Manual", "", item)
        rows = self.runtime.catalog.list_backups(BackupFilter(policy=name, limit=10_000))
        plan = plan_schedule(
            policy.spec.schedule,
            policy.spec.suspend,
            old.next_run_at,
            old.observed_generation != item.generation,
            rows[0].created_at if rows else None,
            self.runtime.clock(),
        )
        status.next_run_at = plan.next_run_at
        request = BackupRequest.from_policy(policy)
        if plan.run_now and storage_found and not self.queue.submit(request.work_key, lambda: self.back_up(request)):
            # The app is busy (a restore, or another policy's backup): run when it is free.
            status.next_run_at = old.next_run_at
        status.next_drill_at = self._plan_drill(policy, old, item, storage_found)
        if self.queue.busy(request.work_key):
            running = self.status.condition("Reconciling", True, "BackupRunning", "", item)
            status.conditions = set_condition(status.conditions, running)
        else:
            status.conditions = [c for c in status.conditions if c.type != "Reconciling"]
        self._status_from_catalog(status, rows, item)
        stalled = find_condition(status.conditions, "Stalled")
        self._tell_warnings(policy, rows, f"policy {name}: {stalled.message}" if stalled else None)
        self._drill_status(status, item)
        status.conditions = set_condition(status.conditions, ready)
        status.observed_generation = item.generation
        self.status.write(item, status)
        upcoming = [t for t in (status.next_run_at, status.next_drill_at) if t is not None]
        return min(upcoming) if upcoming else None

    def _plan_drill(
        self, policy: BackupPolicy, old: BackupPolicyStatus, item: LoadedResource, can_run: bool
    ) -> datetime | None:
        """Start the drill when spec.verify.schedule says so; returns when the next one is due.
        A drill holds its app's work key: it waits for the app's backup or restore, and they
        for it."""
        verify, app = policy.spec.verify, policy.spec.app
        if verify is None or app is None:
            return None
        drills = self.runtime.catalog.drills(policy.metadata.name, limit=1)
        plan = plan_schedule(
            verify.schedule,
            policy.spec.suspend,
            old.next_drill_at,
            old.observed_generation != item.generation,
            drills[0].started_at if drills else None,
            self.runtime.clock(),
        )
        if plan.run_now and (not can_run or not self.queue.submit(app, lambda: self.drill(policy))):
            return old.next_drill_at  # the app is busy: drill when it is free
        return plan.next_run_at

    def _tell_warnings(self, policy: BackupPolicy, rows: list[Backup], stalled: str | None) -> None:
        """BackupOverdue (the watchdog, overdue.py) and PolicyStalled: each told once while it
        holds, and once when it ends (notices.py)."""
        name, spec = policy.metadata.name, policy.spec
        subject = Subject("BackupPolicy", name, app=spec.app or "", policy=name, storage=spec.storage)
        success = next((r.created_at for r in rows if r.status == BackupStatus.COMPLETED), None)
        due = overdue_at(policy, success, rows[-1].created_at if rows else None)
        late = None
        if due is not None and self.runtime.clock() >= due:
            since = f"since {success:%Y-%m-%d %H:%M} UTC" if success else "yet"
            late = f"policy {name} has no successful backup {since}; one was due by {due:%Y-%m-%d %H:%M} UTC"
        condition_changed(self.runtime, Ev.BACKUP_OVERDUE, subject, late, f"policy {name} is within its RPO again")
        condition_changed(self.runtime, Ev.POLICY_STALLED, subject, stalled, f"policy {name}: a backup succeeded")

    def drill(self, policy: BackupPolicy) -> None:
        """The scheduled drill: its row, event and log line record the outcome."""
        with contextlib.suppress(LifeboatError):  # no backup to drill yet: the next schedule tries again
            DrillRunner(self.runtime).run(DrillRequest.from_policy(policy))

    def back_up(self, request: BackupRequest) -> None:
        """The scheduled job: the run records its outcome (row, event, log) itself."""
        with contextlib.suppress(LifeboatError):  # recorded on the backup's row; the next pass shows it
            BackupRunner(self.runtime).run(request)

    def _drill_status(self, status: BackupPolicyStatus, item: LoadedResource) -> None:
        """lastDrill and the Verified condition, from the policy's latest finished drill."""
        finished = [d for d in self.runtime.catalog.drills(item.name, limit=5) if d.result != DrillResult.RUNNING.value]
        if not finished:
            return
        drill = finished[0]
        status.last_drill = LastDrill(
            backup_id=drill.backup_id,
            time=drill.started_at,
            duration_seconds=drill.duration_seconds,
            result=drill.result,
        )
        passed = drill.result == DrillResult.PASSED.value
        condition = self.status.condition(
            "Verified", passed, "DrillPassed" if passed else "DrillFailed", f"{drill.id}: {drill.message}", item
        )
        status.conditions = set_condition(status.conditions, condition)

    def _status_from_catalog(self, status: BackupPolicyStatus, rows: list[Backup], item: LoadedResource) -> None:
        finished = [r for r in rows if r.status in (BackupStatus.COMPLETED, BackupStatus.FAILED)]
        completed = [r for r in finished if r.status == BackupStatus.COMPLETED]
        status.counts = BackupCounts(
            total=len(finished),
            succeeded=len(completed),
            failed=len(finished) - len(completed),
            retained=len(completed),
        )
        if not finished:
            return
        latest = finished[0]
        duration = (latest.completed_at - latest.created_at).total_seconds() if latest.completed_at else 0.0
        status.last_backup = LastBackup(
            id=latest.backup_id,
            time=latest.created_at,
            type=latest.backup_type,
            size_bytes=latest.size_bytes,
            added_bytes=latest.added_bytes,
            duration_seconds=round(duration, 3),
            warnings=latest.warnings.split("; ") if latest.warnings else [],
        )
        status.last_successful_backup_time = completed[0].created_at if completed else None
        succeeded = latest.status == BackupStatus.COMPLETED
        status.last_error = None if succeeded else latest.error_message
        reason = "Completed" if succeeded else (latest.error_code or "Failed")
        message = f"backup {latest.backup_id}" + ("" if succeeded else f": {latest.error_message}")
        if succeeded and latest.warnings:  # completed, but a source was empty or shrank: say so where people look
            reason, message = latest.warnings.split(": ", 1)[0], f"backup {latest.backup_id}: {latest.warnings}"
        status.conditions = set_condition(
            status.conditions, self.status.condition("LastBackupSucceeded", succeeded, reason, message, item)
        )
        recent = finished[:STALLED_AFTER]
        if len(recent) == STALLED_AFTER and all(r.status == BackupStatus.FAILED for r in recent):
            stalled = f"the last {STALLED_AFTER} backups failed; retention deletes nothing until one succeeds"
            status.conditions = set_condition(
                status.conditions, self.status.condition("Stalled", True, reason, stalled, item)
            )
        else:
            status.conditions = [c for c in status.conditions if c.type != "Stalled"]
