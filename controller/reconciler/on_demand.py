"""Work asked for outside the schedules (the REST API): back up an app now, forget one
backup. It goes through the reconciler's work queue, repositories and catalog, never around
them: an app's backup still overlaps nothing, and it is the same backup run as a
scheduled one."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from datetime import timedelta

from controller.apps.discovery import list_app_names
from controller.catalog.models import Backup, BackupStatus, Drill
from controller.errors import AppNotFound, Busy, InvalidRequest, LifeboatError, ResourceNotFound
from controller.reconciler.backup_run import BackupRequest, BackupRunner
from controller.reconciler.drill_run import DrillRequest, DrillRunner, clean_up
from controller.reconciler.forgetting import forget_backups
from controller.reconciler.reconciler import Reconciler
from controller.resources.backup_policy import BackupPolicy, BackupType
from controller.resources.loader import LoadResult
from controller.resources.restore import Restore, RestorePhase

log = logging.getLogger(__name__)
FORGET_LOCK_WAIT = timedelta(seconds=30)  # a DELETE waits this long for running backups of the storage
_ACTIVE_PHASES = {RestorePhase.PENDING.value, RestorePhase.RUNNING.value}


class OnDemand:
    def __init__(
        self,
        reconciler: Reconciler,
        default_type: BackupType = BackupType.INCREMENTAL,
        default_retention_days: int = 30,
    ) -> None:
        """Defaults from the configuration's `defaults` section, for apps without a policy."""
        self.reconciler, self.default_type = reconciler, default_type
        self.default_retention_days = default_retention_days

    # Backups

    def request_for(self, app: str, storage: str | None) -> BackupRequest:
        """How `app` is backed up now: its policy's way (consistency, databases, hooks) under
        no policy, so retention never removes it (DELETE does); the defaults without one.
        Raises before anything is recorded when the storage or the app is unknown."""
        loaded = self.reconciler.load()
        policy = _policy_of(loaded, app)
        name = storage or (policy.spec.storage if policy else None) or only_storage(loaded)
        if loaded.get("BackupStorage", name) is None:
            raise InvalidRequest(f'storage_location: no BackupStorage named "{name}"')
        if app not in list_app_names(self.reconciler.docker()):
            raise AppNotFound(f"no Compose project named {app!r} on this Docker host")
        if policy is None:
            return BackupRequest(app=app, storage=name, backup_type=self.default_type)
        unowned = dataclasses.replace(BackupRequest.from_policy(policy), policy=None, paths=[], retention=None)
        return dataclasses.replace(unowned, storage=name)

    def request_for_policy(self, name: str) -> BackupRequest:
        """The policy's backup, as its schedule takes it (host paths, or its app)."""
        found = self.reconciler.load().get("BackupPolicy", name)
        if found is None or not isinstance(found.resource, BackupPolicy):
            raise ResourceNotFound(f'no BackupPolicy named "{name}"')
        return BackupRequest.from_policy(found.resource)

    def backup(self, request: BackupRequest) -> Backup:
        """Queue the backup and return its pending row; raises Busy, with nothing recorded,
        while the app has other work running."""
        runner = BackupRunner(self.reconciler.runtime)
        row = runner.create(request)
        queued = dataclasses.replace(request, pending_id=row.backup_id)
        if not self.reconciler.queue.submit(request.work_key, lambda: self._run(runner, queued)):
            self.reconciler.catalog.delete_backup(row.backup_id)
            raise Busy(f"{request.described} is busy: a backup or restore of it is running; try again when it ends")
        return row

    @staticmethod
    def _run(runner: BackupRunner, request: BackupRequest) -> None:
        with contextlib.suppress(LifeboatError):  # recorded on the backup's row, with its event and log line
            runner.run(request)

    # Drills

    def drill(self, backup_id: str) -> Drill:
        """Queue a drill of the backup, with its policy's checks (its app's policy for a
        backup of no policy; no checks but the restore and health when there is none)."""
        row = self.reconciler.catalog.get_backup(backup_id)
        if row.status != BackupStatus.COMPLETED:
            raise InvalidRequest(f"backup {backup_id} is {row.status.value}: only completed backups are drilled")
        loaded = self.reconciler.load()
        found = loaded.get("BackupPolicy", row.policy) if row.policy else None
        policy = found.resource if found is not None else _policy_of(loaded, row.app_id)
        try:
            if isinstance(policy, BackupPolicy):
                request = DrillRequest.from_policy(policy, backup_id)
            else:
                request = DrillRequest(row.app_id, row.app_id, None, backup_id)
        except LifeboatError as err:
            raise InvalidRequest(str(err)) from None
        if self.reconciler.queue.busy(request.app):
            raise Busy(f"app {request.app} is busy: a backup or restore of it is running; try again when it ends")
        runner = DrillRunner(self.reconciler.runtime)
        drill = runner.create(request)

        def job() -> None:
            with contextlib.suppress(LifeboatError):  # recorded on the drill's row, with its event
                runner.run(request, drill)

        if not self.reconciler.queue.submit(request.app, job):
            clean_up(self.reconciler.runtime, drill)
            raise Busy(f"app {request.app} became busy; try again when its work ends")
        return drill

    # Forgetting

    def forget(self, backup_id: str) -> Backup:
        """Forget the backup's snapshot and its row; its space returns at the storage's next
        prune. Refused while the backup runs or a restore uses it."""
        reconciler = self.reconciler
        row = reconciler.catalog.get_backup(backup_id)
        if row.status in (BackupStatus.PENDING, BackupStatus.IN_PROGRESS):
            raise Busy(f"backup {backup_id} is {row.status.value}; it can be deleted when it ends")
        loaded = reconciler.load()
        self._refuse_if_restoring(loaded, row)
        with reconciler.queue.claim(row.app_id, f"deleting backup {backup_id}"):
            if row.snapshot_id:
                repository = reconciler.repositories.open(row.storage)
                forget_backups(reconciler.runtime, repository, [row], FORGET_LOCK_WAIT)
            else:
                reconciler.catalog.delete_backup(backup_id)
        message = f"backup {backup_id} deleted on request; its space returns at the next prune"
        reconciler.runtime.event("App", row.app_id, "BackupDeleted", message)
        return row

    def _refuse_if_restoring(self, loaded: LoadResult, row: Backup) -> None:
        catalog = self.reconciler.catalog
        runs = [r for r in catalog.restore_runs_of_backup(row.backup_id) if r.phase in _ACTIVE_PHASES]
        waiting = [
            item.name
            for item in loaded.of_kind("Restore")
            if isinstance(item.resource, Restore)
            and item.resource.spec.backup == row.backup_id
            and not catalog.restore_runs(item.name)
        ]
        if runs or waiting:
            using = ", ".join([r.restore_name or r.id for r in runs] + waiting)
            raise Busy(f"backup {row.backup_id} is used by restore {using}; delete it after the restore ends")


def only_storage(loaded: LoadResult) -> str:
    """The storage to use when a request names none: the only one there is."""
    names = sorted(item.name for item in loaded.of_kind("BackupStorage"))
    if len(names) != 1:
        raise InvalidRequest(
            f"storage_location: name the BackupStorage to use ({', '.join(names) or 'none is defined'})"
        )
    return names[0]


def _policy_of(loaded: LoadResult, app: str) -> BackupPolicy | None:
    """The app's policy (the first by name when it has several)."""
    policies = sorted(
        (item.resource for item in loaded.of_kind("BackupPolicy") if isinstance(item.resource, BackupPolicy)),
        key=lambda policy: policy.metadata.name,
    )
    return next((p for p in policies if p.spec.app == app), None)
