"""A restore run, whoever asked for it (a Restore resource, the API, the CLI), so that the app
runs afterwards, always (DESIGN.md §6). Exactly one catalog row per run, Running before the
first check and before any change.

resolve the backup → verify the snapshot → plan → safety backup of the target (default on)
→ stop the target's running containers (recorded, so `repair` can start them after a
crash) → volumes and mounts made identical to the snapshot → each database started alone
and its dump streamed in → start what was running, wait for health. On any failure after
the first change: put the safety backup back the same way, start the app, and end
RolledBack with the cause."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from controller.apps.database_load import load_dump
from controller.apps.discovery import App, Database, discover
from controller.apps.docker_api import DockerClient
from controller.apps.quiesce import Quiescer
from controller.apps.volumes import volume_mountpoint
from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus, RestoreRun
from controller.errors import BackupCorrupted, BackupNotFound, LifeboatError, RestoreFailed
from controller.reconciler.backup_run import LOCK_WAIT, BackupRequest, BackupRunner
from controller.reconciler.runtime import Runtime, wall_clock
from controller.reconciler.snapshot_layout import children, read_manifest
from controller.repository.file_reader import open_content
from controller.repository.records import Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer, find_node
from controller.resources.backup_policy import BackupType, Consistency
from controller.resources.restore import RestorePhase

log = logging.getLogger(__name__)
_DUMP_CHUNK = 1024 * 1024


@dataclass
class RestoreRequest:
    """One restore, in the same shape for every caller: a backup id, or a policy's latest
    completed backup at or before a point in time."""

    backup_id: str | None = None
    policy: str | None = None
    point_in_time: datetime | None = None
    target_app: str | None = None  # default: the app the backup was taken of
    safety_backup: bool = True
    volumes: list[str] | None = None  # volume keys to restore; None: all
    databases: list[str] | None = None  # database services to restore; None: all
    restore_name: str | None = None  # the Restore resource this run belongs to
    stop_app: bool = True  # False: files are replaced under the running containers
    verify: bool = True  # False: containers started again are not waited on (health checks)


@dataclass
class _Plan:
    volumes: list[str] = field(default_factory=list)  # keys under volumes/
    mounts: list[tuple[str, Path]] = field(default_factory=list)  # (snapshot path, host path)
    databases: list[tuple[str, Database]] = field(default_factory=list)  # (snapshot path, target database)
    notes: list[str] = field(default_factory=list)


def resolve_backup(catalog: Catalog, request: RestoreRequest, now: datetime) -> Backup:
    """The backup the request names: by id, or the policy's latest completed backup at or
    before the point in time (safety backups are the app's, not the policy's, so they never
    match). Raises BackupNotFound."""
    if request.backup_id:
        return catalog.get_backup(request.backup_id)
    moment = request.point_in_time or now
    found = catalog.list_backups(
        BackupFilter(policy=request.policy, status=BackupStatus.COMPLETED, created_before=moment, limit=1)
    )
    if not found:
        raise BackupNotFound(f"policy {request.policy!r} has no completed backup at or before {moment.isoformat()}")
    return found[0]


class RestoreRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run(self, request: RestoreRequest) -> RestoreRun:
        """Returns the finished run: Succeeded, RolledBack, or Failed (with "nothing was
        changed" when it stopped before the first change)."""
        try:
            backup: Backup | None = resolve_backup(self.runtime.catalog, request, self.runtime.clock())
        except LifeboatError as err:
            backup, unresolved = None, err
        target_name = request.target_app or (backup.app_id if backup else "")
        run = self.runtime.catalog.save_restore_run(
            RestoreRun(
                id=f"restore-{self.runtime.clock().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                restore_name=request.restore_name,
                backup_id=backup.backup_id if backup else (request.backup_id or ""),
                target_app=target_name,
                phase=RestorePhase.RUNNING.value,
                started_at=self.runtime.clock(),
            )
        )
        if backup is None:
            return self._finish(run, RestorePhase.FAILED, f"nothing was changed: {unresolved}")
        log.info("restore %s of backup %s into app %s starting", run.id, backup.backup_id, target_name)
        try:
            for attempt in self.runtime.retrying("App", target_name):
                with attempt:
                    repository = self.runtime.repositories.open(backup.storage)
                    client = self.runtime.docker()
            with repository.locked(False, "restore", wall_clock, LOCK_WAIT):
                return self._restore(run, backup, repository, client, target_name, request)
        except LifeboatError as err:
            return self._finish(run, RestorePhase.FAILED, f"nothing was changed: {err}")

    def _restore(
        self,
        run: RestoreRun,
        backup: Backup,
        repository: Repository,
        client: DockerClient,
        target_name: str,
        request: RestoreRequest,
    ) -> RestoreRun:
        """Raises LifeboatError only before the first change."""
        if backup.status != BackupStatus.COMPLETED or backup.snapshot_id is None:
            raise BackupNotFound(f"backup {backup.backup_id} is {backup.status.value}, not restorable")
        snapshot = repository.load_snapshot(backup.snapshot_id)
        _verify(repository, snapshot, backup)
        target = discover(client, target_name, read_secret=self.runtime.read_secret)
        plan = self._plan(repository, snapshot, target, request)
        safety: Backup | None = None
        if request.safety_backup:
            try:
                safety = self._safety_backup(target, backup)
            except LifeboatError as err:
                raise LifeboatError(
                    f"the safety backup failed ({err}); fix it, or restore with the safety backup disabled"
                ) from None
            run = self.runtime.catalog.change_restore_run(run.id, safety_backup_id=safety.backup_id)
        try:
            self._apply(client, repository, snapshot, target, plan, run.id, request)
        except LifeboatError as err:
            return self._roll_back(client, repository, run, target, safety, err, request)
        return self._finish(run, RestorePhase.SUCCEEDED, "; ".join(["restored", *plan.notes]))

    def _plan(self, repository: Repository, snapshot: Snapshot, target: App, request: RestoreRequest) -> _Plan:
        plan = _Plan()
        for node in children(repository, snapshot, "volumes"):
            if request.volumes is None or node.name in request.volumes:
                plan.volumes.append(node.name)
        for mount in read_manifest(repository, snapshot).get("mounts", []):
            container = target.container_for(mount["service"])
            bind = (
                next((b for b in container.binds if b.destination == mount["destination"]), None) if container else None
            )
            if bind is None:
                plan.notes.append(f"{mount['path']} skipped: {target.name} has no bind mount {mount['destination']}")
            else:
                plan.mounts.append((mount["path"], bind.source))
        for node in children(repository, snapshot, "databases"):
            service = node.name.rsplit(".", 1)[0]
            if request.databases is not None and service not in request.databases:
                continue
            database = next((d for d in target.databases if d.service == service), None)
            if database is None:
                raise RestoreFailed(f"app {target.name} has no database service {service!r} to restore into")
            plan.databases.append((f"databases/{node.name}", database))
        return plan

    def _safety_backup(self, target: App, restored: Backup) -> Backup:
        request = BackupRequest(
            app=target.name,
            storage=restored.storage,
            backup_type=BackupType.INCREMENTAL,
            consistency=Consistency.PAUSE,
            description=f"safety backup before restoring {restored.backup_id}",
            tags={"safety": "true"},
        )
        return BackupRunner(self.runtime).run(request)

    def _apply(
        self,
        client: DockerClient,
        repository: Repository,
        snapshot: Snapshot,
        target: App,
        plan: _Plan,
        operation: str,
        request: RestoreRequest,
    ) -> None:
        """Stop, make the data identical to `snapshot`, start what was running."""
        quiescer = Quiescer(
            client,
            self.runtime.ledger,
            target.name,
            target.containers if request.stop_app else [],
            "stopped",
            operation,
            self.runtime.clock,
            wait_until_up=request.verify,
        )
        quiescer.quiesce()
        try:
            restorer = Restorer(repository)
            for key in plan.volumes:
                mountpoint = volume_mountpoint(client, target.name, key)
                restorer.restore(snapshot, mountpoint, subpath=f"volumes/{key}", delete=True)
            for path, host_path in plan.mounts:
                restorer.restore(snapshot, host_path, subpath=path, delete=True)
            for path, database in plan.databases:
                content = open_content(repository, find_node(repository, snapshot, path))
                load_dump(client, database, path, _chunks(content), was_running=database.container.running)
        finally:
            quiescer.resume()

    def _roll_back(
        self,
        client: DockerClient,
        repository: Repository,
        run: RestoreRun,
        target: App,
        safety: Backup | None,
        cause: LifeboatError,
        request: RestoreRequest,
    ) -> RestoreRun:
        if safety is None or safety.snapshot_id is None:
            return self._finish(run, RestorePhase.FAILED, f"{cause}; no safety backup to roll back to")
        try:
            current = discover(client, target.name, read_secret=self.runtime.read_secret)
            snapshot = repository.load_snapshot(safety.snapshot_id)
            back = RestoreRequest(safety.backup_id, stop_app=request.stop_app, verify=request.verify)
            plan = self._plan(repository, snapshot, current, back)
            self._apply(client, repository, snapshot, current, plan, run.id, back)
        except LifeboatError as err:
            message = f"{cause}; rolling back to safety backup {safety.backup_id} failed too: {err}"
            return self._finish(run, RestorePhase.FAILED, message)
        return self._finish(run, RestorePhase.ROLLED_BACK, f"{cause}; the app runs on safety backup {safety.backup_id}")

    def _finish(self, run: RestoreRun, phase: RestorePhase, message: str) -> RestoreRun:
        """The run's end, its event (on the target app) and its log line."""
        finished = self.runtime.catalog.change_restore_run(
            run.id, phase=phase.value, message=message, completed_at=self.runtime.clock()
        )
        succeeded = phase == RestorePhase.SUCCEEDED
        (log.info if succeeded else log.warning)("restore %s: %s: %s", run.id, phase.value, message)
        self.runtime.event("App", run.target_app or "-", f"Restore{phase.value}", f"{run.id}: {message}", not succeeded)
        return finished


def _chunks(content: BinaryIO) -> Iterator[bytes]:
    while chunk := content.read(_DUMP_CHUNK):
        yield chunk


def _verify(repository: Repository, snapshot: Snapshot, backup: Backup) -> None:
    """Every tree readable and authentic, every content blob indexed: before the app stops."""
    missing = 0
    pending = [snapshot.tree]
    try:
        while pending:
            for node in repository.load_tree(pending.pop()):
                if node.subtree:
                    pending.append(node.subtree)
                missing += sum(1 for c in node.content if bytes.fromhex(c) not in repository.index)
    except LifeboatError as err:
        raise BackupCorrupted(f"backup {backup.backup_id} cannot be read: {err}") from None
    if missing:
        raise BackupCorrupted(f"backup {backup.backup_id} misses {missing} data blob(s); run lifeboat repo check")
