"""Work asked for outside the schedules (the REST API): back up an app now, forget one
backup. It goes through the reconciler's work queue, storages and catalog, never around
them: an app's backup still waits for nothing and overlaps nothing, its outcome is a
catalog row like any other."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta

from controller.apps.backup import BackupRequest, new_backup_id
from controller.apps.discovery import list_app_names
from controller.apps.quiesce import Owner
from controller.catalog.models import Backup, BackupStatus
from controller.errors import (
    AppNotFound,
    Busy,
    InvalidRequest,
    LifeboatError,
    ResourceNotFound,
)
from controller.host import host_name
from controller.reconciler.reconciler import LOCK_WAIT, Reconciler, wall_clock
from controller.repository.repository import Repository
from controller.resources.backup_policy import BackupPolicy, BackupType, Compression
from controller.resources.backup_storage import BackupStorage
from controller.resources.loader import LoadResult
from controller.resources.restore import Restore, RestorePhase

log = logging.getLogger(__name__)
FORGET_LOCK_WAIT = timedelta(seconds=30)  # a DELETE waits this long for running backups of the storage
_ACTIVE_PHASES = {RestorePhase.PENDING.value, RestorePhase.RUNNING.value}


@dataclass(frozen=True)
class BackupOrder:
    """An app backup asked for now. Unset fields come from the app's policy, when it has one."""

    app: str
    storage: str | None = None
    backup_type: BackupType | None = None
    description: str = ""
    include_databases: bool = True
    include_files: bool = True
    compression: Compression | None = None


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

    def backup(self, order: BackupOrder) -> Backup:
        """Queue the backup and return its pending row; raises before queueing anything when
        the app, the storage or the options are wrong, or the app is busy."""
        loaded = self.reconciler.load()
        policy = _policy_of(loaded, order.app)
        storage = self._storage_for(loaded, order, policy)
        if order.app not in list_app_names(self.reconciler.docker()):
            raise AppNotFound(f"no Compose project named {order.app!r} on this Docker host")
        request = self._request(order, policy, storage)
        now = self.reconciler.clock()
        row = self.reconciler.catalog.add_backup(
            Backup(
                backup_id=new_backup_id(order.app, now),
                app_id=order.app,
                app_name=order.app,
                backup_type=request.backup_type.value,
                description=order.description,
                status=BackupStatus.PENDING,
                created_at=now,
                storage=storage.metadata.name,
                compressed=request.compression != Compression.OFF.value,
                host=host_name(),
                owner=Owner.this_process().token,
            )
        )
        request.pending_id = row.backup_id
        if not self.reconciler.queue.submit(order.app, lambda: self._backup_job(request, storage)):
            self.reconciler.catalog.delete_backup(row.backup_id)
            raise Busy(f"app {order.app} is busy: a backup or restore of it is running; try again when it ends")
        return row

    def _storage_for(self, loaded: LoadResult, order: BackupOrder, policy: BackupPolicy | None) -> BackupStorage:
        storages = {item.name: item.resource for item in loaded.of_kind("BackupStorage")}
        name = order.storage or (policy.spec.storage if policy else None) or only_storage(loaded)
        storage = storages.get(name)
        if not isinstance(storage, BackupStorage):
            raise InvalidRequest(f'storage_location: no BackupStorage named "{name}"')
        return storage

    def _request(self, order: BackupOrder, policy: BackupPolicy | None, storage: BackupStorage) -> BackupRequest:
        """The policy's way of backing the app up (consistency, database settings, hooks),
        under no policy: retention never removes an API backup; DELETE does."""
        if not (order.include_databases or order.include_files):
            raise InvalidRequest("include_database and include_uploads are both false: nothing to back up")
        request = (
            dataclasses.replace(BackupRequest.from_policy(policy), policy=None, paths=[])
            if policy
            else BackupRequest(app=order.app, storage=storage.metadata.name, backup_type=self.default_type)
        )
        include = request.include.model_copy()
        include.databases = include.databases and order.include_databases
        if not order.include_files:
            include.volumes, include.bind_mounts = [], False
        return dataclasses.replace(
            request,
            storage=storage.metadata.name,
            backup_type=order.backup_type or request.backup_type,
            description=order.description,
            include=include,
            compression=(order.compression.value if order.compression else request.compression),
        )

    def _backup_job(self, request: BackupRequest, storage: BackupStorage) -> None:
        """Transient failures while connecting (Docker, the storage) are retried; once the
        backup has started its outcome is final and recorded on its row."""
        assert request.app is not None and request.pending_id is not None
        reconciler = self.reconciler
        try:
            for attempt in reconciler.retrying("App", request.app):
                with attempt:
                    repository = reconciler.open_repository(storage)
                    client = reconciler.docker()
            with repository.locked(False, "backup", wall_clock, LOCK_WAIT):
                row = reconciler.app_backup(client, repository, storage, request.app).run(request)
            reconciler.catalog.record_event(reconciler.clock(), "App", request.app, "BackupCompleted", row.backup_id)
            reconciler.measure(storage.metadata.name, repository)
        except LifeboatError as err:
            log.warning("backup %s of app %s failed: %s", request.pending_id, request.app, err)
            self._fail_if_pending(request.pending_id, err)
            reconciler.catalog.record_event(reconciler.clock(), "App", request.app, err.code, str(err), True)
        finally:
            reconciler.progress.pop(request.app, None)

    def _fail_if_pending(self, backup_id: str, err: LifeboatError) -> None:
        """A backup that never started (Docker or the storage unreachable) still ends failed."""
        row = self.reconciler.catalog.get_backup(backup_id)
        if row.status == BackupStatus.PENDING:
            row.status, row.error_code, row.error_message = BackupStatus.FAILED, err.code, str(err)
            row.completed_at = self.reconciler.clock()
            self.reconciler.catalog.save_backup(row)

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
                repository = self._repository_of(loaded, row)
                with repository.locked(True, "forget", wall_clock, FORGET_LOCK_WAIT):
                    repository.forget(row.snapshot_id)
            reconciler.catalog.delete_backup(backup_id)
        message = f"backup {backup_id} deleted on request; its space returns at the next prune"
        reconciler.catalog.record_event(reconciler.clock(), "App", row.app_id, "BackupDeleted", message)
        return row

    def _refuse_if_restoring(self, loaded: LoadResult, row: Backup) -> None:
        runs = [r for r in self.reconciler.catalog.restore_runs_of_backup(row.backup_id) if r.phase in _ACTIVE_PHASES]
        waiting = [
            item.name
            for item in loaded.of_kind("Restore")
            if isinstance(item.resource, Restore)
            and item.resource.spec.backup == row.backup_id
            and not self.reconciler.catalog.restore_runs(item.name)
        ]
        if runs or waiting:
            using = ", ".join([r.restore_name or r.id for r in runs] + waiting)
            raise Busy(f"backup {row.backup_id} is used by restore {using}; delete it after the restore ends")

    def _repository_of(self, loaded: LoadResult, row: Backup) -> Repository:
        item = loaded.get("BackupStorage", row.storage)
        if item is None or not isinstance(item.resource, BackupStorage):
            raise ResourceNotFound(
                f'backup {row.backup_id} is stored in BackupStorage "{row.storage}", which is not defined; '
                "apply that storage's resource first"
            )
        return self.reconciler.open_repository(item.resource)


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
