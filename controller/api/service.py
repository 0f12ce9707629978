"""What the routes do, in terms of the reconciler, the catalog and the resources directory.

Writes to resources go through the same validation and store as `lifeboat apply`; the loop
is woken afterwards so that it acts at once instead of at its next trigger."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.api.download import TarDownload
from controller.api.models import (
    BackupCreate,
    BackupDetail,
    BackupOut,
    BackupPage,
    BackupSchedule,
    DrillOut,
    ItemOut,
    ProgressOut,
    RestoreAccepted,
    RestoreCreate,
    RestoreOut,
    RestorePreviewOut,
    RestoreStepOut,
    ScheduleOut,
)
from controller.catalog.catalog import BackupFilter
from controller.catalog.models import Backup, BackupStatus
from controller.errors import (
    Busy,
    Conflict,
    InvalidRequest,
    InvalidResource,
    LifeboatError,
    ResourceNotFound,
    ResourceProblem,
)
from controller.reconciler.on_demand import OnDemand, only_storage
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.restore_preview import preview_restore
from controller.reconciler.restore_run import RestoreRequest
from controller.reconciler.runtime import wall_clock
from controller.resources.backup_policy import BackupPolicy, Compression
from controller.resources.backup_storage import BackupStorage
from controller.resources.documents import dump_yaml
from controller.resources.loader import LoadedResource, LoadResult, load_file
from controller.resources.meta import API_VERSION, find_condition
from controller.resources.restore import Restore, RestorePhase
from controller.resources.store import ResourceStore

MANAGED_BY = "lifeboat.io/managed-by"  # label on resources the API writes; value "api"
_FINISHED = (BackupStatus.COMPLETED, BackupStatus.FAILED)
DOWNLOAD_LOCK_WAIT = timedelta(seconds=30)


def _managed_by_api(item: LoadedResource) -> bool:
    return item.resource.metadata.labels.get(MANAGED_BY) == "api"


class ApiService:
    def __init__(self, reconciler: Reconciler, on_demand: OnDemand, wake: Callable[[], None]) -> None:
        self.reconciler, self.on_demand, self.wake = reconciler, on_demand, wake
        self.catalog = reconciler.catalog
        self.store = ResourceStore(reconciler.resources)

    # Backups

    def list_backups(self, where: BackupFilter, page: int) -> BackupPage:
        rows = self.catalog.list_backups(where)
        total = self.catalog.count_backups(where)
        return BackupPage(items=[BackupOut.of(r) for r in rows], total=total, page=page, page_size=where.limit)

    def backup(self, backup_id: str) -> BackupDetail:
        row = self.catalog.get_backup(backup_id)
        detail = BackupDetail(**BackupOut.of(row).model_dump())
        detail.items = [ItemOut.model_validate(i) for i in self.catalog.items_of(backup_id)]
        if row.status == BackupStatus.IN_PROGRESS:
            progress = self.reconciler.progress_of(row)
            detail.progress = ProgressOut.model_validate(progress) if progress is not None else None
        return detail

    def create_backup(self, app_id: str, body: BackupCreate) -> Backup:
        if not body.encrypt:
            raise InvalidRequest("encrypt: every Lifeboat repository is encrypted; an unencrypted backup is refused")
        request = self.on_demand.request_for(app_id, body.storage_location)
        if not (body.include_database or body.include_uploads):
            raise InvalidRequest("include_database and include_uploads are both false: nothing to back up")
        include = request.include.model_copy()
        include.databases = include.databases and body.include_database
        if not body.include_uploads:
            include.volumes, include.bind_mounts = [], False
        request = dataclasses.replace(
            request,
            backup_type=body.backup_type or request.backup_type,
            description=body.description,
            include=include,
            compression=request.compression if body.compress else Compression.OFF.value,
        )
        row = self.on_demand.backup(request)
        self.wake()  # policies of the app show Reconciling at once
        return row

    def create_policy_backup(self, name: str) -> Backup:
        row = self.on_demand.backup(self.on_demand.request_for_policy(name))
        self.wake()
        return row

    def wait_until_finished(self, backup_id: str, timeout: float) -> Backup:
        deadline = time.monotonic() + timeout
        while True:
            row = self.catalog.get_backup(backup_id)
            if row.status in _FINISHED or time.monotonic() > deadline:
                return row
            time.sleep(0.2)

    def delete_backup(self, backup_id: str) -> Backup:
        row = self.on_demand.forget(backup_id)
        self.wake()
        return row

    def download(self, backup_id: str, compressed: bool) -> TarDownload:
        row = self.catalog.get_backup(backup_id)
        if row.status != BackupStatus.COMPLETED or not row.snapshot_id:
            raise Busy(f"backup {backup_id} is {row.status.value}; only completed backups can be downloaded")
        item = self.reconciler.load().get("BackupStorage", row.storage)
        if item is None or not isinstance(item.resource, BackupStorage):
            raise ResourceNotFound(f'backup {backup_id} is in BackupStorage "{row.storage}", which is not defined')
        repository = self.reconciler.repositories.open(row.storage)
        snapshot = repository.load_snapshot(row.snapshot_id)
        return TarDownload(
            repository,
            snapshot,
            lambda: repository.locked(False, "export", wall_clock, DOWNLOAD_LOCK_WAIT),
            compressed=compressed,
        )

    # Operations

    def in_flight(self) -> int:
        return self.reconciler.queue.in_flight()

    def readiness(self) -> dict[str, str]:
        """The catalog answers and the resources directory is readable."""
        checks = {}
        try:
            self.catalog.count_backups(BackupFilter(limit=1))
            checks["catalog"] = "ok"
        except LifeboatError as err:  # the catalog translates its database's errors
            checks["catalog"] = str(err)
        root = self.reconciler.resources
        checks["resources"] = "ok" if root.is_dir() and os.access(root, os.R_OK | os.X_OK) else f"{root} not readable"
        return checks

    # Restores

    def preview_restore(self, backup_id: str, body: RestoreCreate) -> RestorePreviewOut:
        """The dry run: what the restore would do, computed now; nothing is written."""
        self.reconciler.load()  # the storages, as the repositories open them
        request = RestoreRequest(
            backup_id,
            target_app=body.target_app,
            volumes=body.volumes,
            databases=body.databases,
            volume_map=body.volume_map or {},
            stop_app=body.stop_app,
            definition=body.definition,
            project_dir=body.project_dir,
            force=body.force,
            keep_ports=body.keep_ports,
        )
        return RestorePreviewOut.model_validate(preview_restore(self.reconciler.runtime, request).to_dict())

    def create_restore(self, backup_id: str, body: RestoreCreate) -> RestoreAccepted:
        row = self.catalog.get_backup(backup_id)
        if row.status in (BackupStatus.PENDING, BackupStatus.IN_PROGRESS):
            raise Busy(f"backup {backup_id} is {row.status.value}; restore it when it has completed")
        if row.status != BackupStatus.COMPLETED or not row.snapshot_id:
            raise InvalidRequest(f"backup {backup_id} failed ({row.error_message}); only completed backups restore")
        now = self.reconciler.clock()
        name = f"restore-{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        spec: dict[str, Any] = {
            "backup": backup_id,
            "targetApp": body.target_app,
            "stopApp": body.stop_app,
            "safetyBackup": body.safety_backup,
            "verify": body.verify,
            "databases": body.databases,
            "volumes": body.volumes,
            "volumeMap": body.volume_map,
            "exactDatabases": body.exact_databases or None,
            "definition": body.definition or None,
            "projectDir": body.project_dir,
            "force": body.force or None,
            "keepPorts": body.keep_ports or None,
        }
        self._apply("Restore", name, {k: v for k, v in spec.items() if v is not None})
        self.wake()
        return RestoreAccepted(restore_id=name, phase=RestorePhase.PENDING.value, url=f"/api/v1/restores/{name}")

    def create_drill(self, backup_id: str) -> DrillOut:
        drill = self.on_demand.drill(backup_id)
        return DrillOut.of(drill)

    def drill(self, drill_id: str) -> DrillOut:
        found = self.catalog.drill(drill_id)
        if found is None:
            raise ResourceNotFound(f"no drill {drill_id!r}")
        return DrillOut.of(found)

    def restore(self, restore_id: str) -> RestoreOut:
        item = self.reconciler.load().get("Restore", restore_id)
        runs = self.catalog.restore_runs(restore_id)
        if item is None and not runs:  # a run the CLI started, by the id it printed
            run = self.catalog.restore_run(restore_id)
            runs = [run] if run is not None else []
        if item is None and not runs:
            raise ResourceNotFound(f"no restore {restore_id!r}")
        spec = item.resource.spec if item is not None and isinstance(item.resource, Restore) else None
        status = item.resource.status if item is not None and isinstance(item.resource, Restore) else None
        out = RestoreOut(
            restore_id=restore_id,
            backup_id=(status.backup_id if status else None) or (spec.backup if spec else None),
            target_app=spec.target_app if spec else None,
            phase=status.phase.value if status else RestorePhase.PENDING.value,
            message=status.message if status else "",
            safety_backup_id=status.safety_backup_id if status else None,
            started_at=None,
            completed_at=None,
            elapsed_seconds=None,
            url=f"/api/v1/restores/{restore_id}",
        )
        if runs:  # the catalog is ahead of the status the next pass writes
            run = runs[-1]
            out.backup_id, out.target_app, out.phase, out.message = (
                run.backup_id,
                run.target_app,
                run.phase,
                run.message,
            )
            out.safety_backup_id, out.started_at, out.completed_at = (
                run.safety_backup_id,
                run.started_at,
                run.completed_at,
            )
            end = run.completed_at or self.reconciler.clock()
            out.elapsed_seconds = round((end - run.started_at).total_seconds(), 3)
            step = self.reconciler.runtime.restores.get(run.id)
            out.progress = RestoreStepOut.model_validate(step) if step is not None else None
        return out

    # Schedules

    def schedules(self, app_id: str | None) -> list[ScheduleOut]:
        views = []
        for item in self.reconciler.load().of_kind("BackupPolicy"):
            policy = item.resource
            assert isinstance(policy, BackupPolicy)
            if app_id is None or policy.spec.app == app_id:
                views.append(_schedule_view(item, policy))
        return sorted(views, key=lambda view: view.policy)

    def put_schedule(self, body: BackupSchedule) -> ScheduleOut:
        """Create or update the app's API-managed policy. A policy kept in files (GitOps) is
        never overwritten: change it where it lives."""
        name = body.policy or body.app_id
        loaded = self.reconciler.load()
        for item in loaded.of_kind("BackupPolicy"):
            policy = item.resource
            assert isinstance(policy, BackupPolicy)
            if (item.name == name or policy.spec.app == body.app_id) and not _managed_by_api(item):
                raise Conflict(
                    f"app {body.app_id} is backed up by policy {item.name}, kept in {item.path.name} "
                    "(not managed by the API); change it there"
                )
        existing = loaded.get("BackupPolicy", name)
        spec: dict[str, Any] = {}
        if existing is not None:
            spec = existing.resource.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        spec.update(self._policy_spec(body, loaded))
        if body.cron is None and body.frequency is None:
            spec.pop("schedule", None)
        self._apply("BackupPolicy", name, spec)
        self.wake()
        written = self.reconciler.load().get("BackupPolicy", name)
        assert written is not None and isinstance(written.resource, BackupPolicy)
        return _schedule_view(written, written.resource)

    def _policy_spec(self, body: BackupSchedule, loaded: LoadResult) -> dict[str, Any]:
        storage = body.storage_location or only_storage(loaded)
        retention = {"days": body.retention_days, "keepLast": body.keep_last}
        if body.retention_days is None and body.keep_last is None:
            retention["days"] = self.on_demand.default_retention_days
        schedule: dict[str, Any] | None = None
        if body.cron is not None:
            schedule = {"cron": body.cron, "timezone": body.timezone}
        elif body.frequency is not None:
            schedule = {
                "frequency": body.frequency.value,
                "time": body.time,
                "dayOfWeek": body.day_of_week,
                "dayOfMonth": body.day_of_month,
                "timezone": body.timezone,
            }
        spec: dict[str, Any] = {
            "app": body.app_id,
            "storage": storage,
            "backupType": body.backup_type.value,
            "suspend": not body.enabled,
            "retention": {k: v for k, v in retention.items() if v is not None},
            "include": {
                "databases": body.include_database,
                "volumes": ["*"] if body.include_uploads else [],
                "bindMounts": body.include_uploads,
            },
        }
        if schedule is not None:
            spec["schedule"] = {k: v for k, v in schedule.items() if v is not None}
        return spec

    # Writing resources

    def _apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Validated exactly as `lifeboat apply` validates a file, then applied by the store."""
        document = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": {"name": name, "labels": {MANAGED_BY: "api"}},
            "spec": spec,
        }
        with tempfile.TemporaryDirectory(prefix="lifeboat-api-") as staging:
            path = Path(staging) / f"{name}.yaml"
            header = "# Written by the Lifeboat API; changes here may be overwritten by it.\n"
            path.write_text(header + dump_yaml(document), encoding="utf-8")
            result = load_file(path)
            if result.problems:
                raise InvalidResource(
                    [ResourceProblem("request body", None, p.field, p.message, kind, name) for p in result.problems]
                )
            try:
                self.store.apply(result.resources)
            except FileExistsError as err:
                raise Conflict(str(err)) from None


def _schedule_view(item: LoadedResource, policy: BackupPolicy) -> ScheduleOut:
    spec, status = policy.spec, policy.status
    schedule = spec.schedule
    ready = find_condition(status.conditions, "Ready") if status else None
    return ScheduleOut(
        app_id=spec.app,
        policy=policy.metadata.name,
        managed_by_api=_managed_by_api(item),
        enabled=not spec.suspend,
        cron=schedule.cron if schedule else None,
        frequency=schedule.frequency.value if schedule and schedule.frequency else None,
        time=schedule.time if schedule else None,
        day_of_week=schedule.day_of_week if schedule else None,
        day_of_month=schedule.day_of_month if schedule else None,
        timezone=schedule.timezone if schedule else None,
        backup_type=spec.backup_type.value,
        retention_days=spec.retention.days,
        keep_last=spec.retention.keep_last,
        storage_location=spec.storage,
        include_database=spec.include.databases,
        include_uploads=bool(spec.include.volumes) or spec.include.bind_mounts,
        next_run_at=status.next_run_at if status else None,
        last_backup_at=status.last_backup.time if status and status.last_backup else None,
        ready=(ready.status.value == "True") if ready else None,
        message=ready.message if ready else "",
    )
