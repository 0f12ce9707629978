"""Restore an app from a backup so that it runs afterwards, always (DESIGN.md §6).

verify the snapshot → safety backup of the target (default on) → stop the target's running
containers (recorded, so `repair` can start them after a crash) → volumes and mounts made
identical to the snapshot → each database started alone and its dump streamed in → start
what was running, wait for health. On any failure after the first change: put the safety
backup back the same way, start the app, and end RolledBack with the cause."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docker import DockerClient

from controller.apps.backup import MANIFEST, AppBackup, BackupRequest
from controller.apps.discovery import PROJECT_LABEL, VOLUME_LABEL, App, Database, discover
from controller.apps.docker_api import docker_errors
from controller.apps.exec import feed, run
from controller.apps.quiesce import Quiescer, wait_until_up
from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus, RestoreRun
from controller.errors import BackupCorrupted, BackupNotFound, LifeboatError, RestoreFailed
from controller.repository.file_reader import open_content
from controller.repository.records import Node, Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer, find_node
from controller.resources.backup_policy import BackupType, Consistency
from controller.resources.meta import SecretRef
from controller.resources.restore import RestorePhase

READY_TIMEOUT_SECONDS = 180.0
_DUMP_CHUNK = 1024 * 1024


@dataclass
class RestoreRequest:
    backup_id: str
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


def backup_at(catalog: Catalog, policy: str, point_in_time: datetime) -> Backup:
    """The policy's latest completed backup at or before `point_in_time` (Restore.spec.policy
    + pointInTime); safety backups are the app's, not the policy's, so they never match."""
    found = catalog.list_backups(
        BackupFilter(policy=policy, status=BackupStatus.COMPLETED, created_before=point_in_time, limit=1)
    )
    if not found:
        raise BackupNotFound(f"policy {policy!r} has no completed backup at or before {point_in_time.isoformat()}")
    return found[0]


class AppRestore:
    def __init__(
        self,
        client: DockerClient,
        catalog: Catalog,
        repository: Repository,
        *,
        storage_name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_secret: Callable[[SecretRef], str] | None = None,
    ) -> None:
        self.client, self.catalog, self.repository = client, catalog, repository
        self.storage_name, self.clock, self.read_secret = storage_name, clock, read_secret

    def run(self, request: RestoreRequest) -> RestoreRun:
        """Returns the finished run (Succeeded, RolledBack or Failed); raises only when
        nothing was changed (unknown backup, corrupted snapshot, app not found)."""
        backup = self.catalog.get_backup(request.backup_id)
        if backup.status != BackupStatus.COMPLETED or backup.snapshot_id is None:
            raise BackupNotFound(f"backup {backup.backup_id} is {backup.status.value}, not restorable")
        snapshot = self.repository.load_snapshot(backup.snapshot_id)
        self._verify(snapshot, backup)
        target_name = request.target_app or backup.app_id
        target = discover(self.client, target_name, read_secret=self.read_secret)
        plan = self._plan(snapshot, target, request)
        run_row = self.catalog.save_restore_run(
            RestoreRun(
                id=f"restore-{self.clock().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                restore_name=request.restore_name,
                backup_id=backup.backup_id,
                target_app=target_name,
                phase=RestorePhase.RUNNING.value,
                started_at=self.clock(),
                message="; ".join(plan.notes),
            )
        )
        safety: Backup | None = None
        if request.safety_backup:
            try:
                safety = self._safety_backup(target, backup)
            except LifeboatError as err:
                return self._finish(
                    run_row,
                    RestorePhase.FAILED,
                    f"nothing was changed: the safety backup failed ({err}); "
                    "fix it, or restore with the safety backup disabled",
                )
            run_row.safety_backup_id = safety.backup_id
            self.catalog.save_restore_run(run_row)
        try:
            self._apply(snapshot, target, plan, run_row.id, request)
        except LifeboatError as err:
            return self._roll_back(run_row, target, safety, err, request)
        return self._finish(run_row, RestorePhase.SUCCEEDED, "; ".join(["restored", *plan.notes]))

    # Before anything changes

    def _verify(self, snapshot: Snapshot, backup: Backup) -> None:
        """Every tree readable and authentic, every content blob indexed: before the app stops."""
        missing = 0
        pending = [snapshot.tree]
        try:
            while pending:
                for node in self.repository.load_tree(pending.pop()):
                    if node.subtree:
                        pending.append(node.subtree)
                    missing += sum(1 for c in node.content if bytes.fromhex(c) not in self.repository.index)
        except LifeboatError as err:
            raise BackupCorrupted(f"backup {backup.backup_id} cannot be read: {err}") from None
        if missing:
            raise BackupCorrupted(f"backup {backup.backup_id} misses {missing} data blob(s); run lifeboat repo check")

    def _children(self, snapshot: Snapshot, folder: str) -> list[Node]:
        try:
            node = find_node(self.repository, snapshot, folder)
        except BackupNotFound:
            return []
        return self.repository.load_tree(node.subtree) if node.subtree else []

    def _plan(self, snapshot: Snapshot, target: App, request: RestoreRequest) -> _Plan:
        plan = _Plan()
        for node in self._children(snapshot, "volumes"):
            if request.volumes is None or node.name in request.volumes:
                plan.volumes.append(node.name)
        manifest = self._manifest(snapshot)
        for mount in manifest.get("mounts", []):
            container = target.container_for(mount["service"])
            bind = (
                next((b for b in container.binds if b.destination == mount["destination"]), None) if container else None
            )
            if bind is None:
                plan.notes.append(f"{mount['path']} skipped: {target.name} has no bind mount {mount['destination']}")
            else:
                plan.mounts.append((mount["path"], bind.source))
        for node in self._children(snapshot, "databases"):
            service = node.name.rsplit(".", 1)[0]
            if request.databases is not None and service not in request.databases:
                continue
            database = next((d for d in target.databases if d.service == service), None)
            if database is None:
                raise RestoreFailed(f"app {target.name} has no database service {service!r} to restore into")
            plan.databases.append((f"databases/{node.name}", database))
        return plan

    def _manifest(self, snapshot: Snapshot) -> dict[str, Any]:
        try:
            node = find_node(self.repository, snapshot, MANIFEST)
        except BackupNotFound:
            return {}
        loaded: dict[str, Any] = json.loads(open_content(self.repository, node).read())
        return loaded

    def _safety_backup(self, target: App, restored: Backup) -> Backup:
        request = BackupRequest(
            app=target.name,
            storage=self.storage_name,
            backup_type=BackupType.INCREMENTAL,
            consistency=Consistency.PAUSE,
            description=f"safety backup before restoring {restored.backup_id}",
            tags={"safety": "true"},
        )
        return AppBackup(
            self.client, self.catalog, self.repository, clock=self.clock, read_secret=self.read_secret
        ).run(request)

    # Changing the app

    def _apply(self, snapshot: Snapshot, target: App, plan: _Plan, operation: str, request: RestoreRequest) -> None:
        """Stop, make the data identical to `snapshot`, start what was running."""
        quiescer = Quiescer(
            self.client,
            self.catalog,
            target.name,
            target.containers if request.stop_app else [],
            "stopped",
            operation,
            self.clock,
            wait_until_up=request.verify,
        )
        quiescer.quiesce()
        try:
            restorer = Restorer(self.repository)
            for key in plan.volumes:
                mountpoint = self._volume_mountpoint(target.name, key)
                restorer.restore(snapshot, mountpoint, subpath=f"volumes/{key}", delete=True)
            for path, host_path in plan.mounts:
                restorer.restore(snapshot, host_path, subpath=path, delete=True)
            for path, database in plan.databases:
                self._load_dump(snapshot, path, database, was_running=database.container.running)
        finally:
            quiescer.resume()

    def _volume_mountpoint(self, app: str, key: str) -> Path:
        """The target's volume for `key`, created (with Compose's labels) when the app has none."""
        with docker_errors(f"finding volume {key} of app {app}"):
            found = self.client.api.volumes(filters={"label": [f"{PROJECT_LABEL}={app}", f"{VOLUME_LABEL}={key}"]})
            volumes = found.get("Volumes") or []
            if not volumes:
                labels = {PROJECT_LABEL: app, VOLUME_LABEL: key}
                volumes = [self.client.api.create_volume(f"{app}_{key}", labels=labels)]
        return Path(volumes[0]["Mountpoint"])

    def _load_dump(self, snapshot: Snapshot, path: str, database: Database, was_running: bool) -> None:
        container = database.container
        with docker_errors(f"starting {container.name} for the import"):
            self.client.api.start(container.id)
        wait_until_up(self.client, container.id)
        self._wait_ready(database)
        node = find_node(self.repository, snapshot, path)
        content = open_content(self.repository, node)
        chunks = iter(lambda: content.read(_DUMP_CHUNK), b"")
        command = database.source.restore_command(database.credentials)
        try:
            dump = database.source.restore_input(database.credentials, chunks)
            result = feed(self.client, container.id, command, dump)
        except LifeboatError as err:  # the dump could not be read from the repository
            raise RestoreFailed(f"importing {path} into {container.name}: {err}") from None
        if result.exit_code != 0:
            said = f": {result.stderr}" if result.stderr else ""
            raise RestoreFailed(
                f"importing {path} into {container.name}: {command.shown()} exited {result.exit_code}{said}"
            )
        if not was_running:
            with docker_errors(f"stopping {container.name} after the import"):
                self.client.api.stop(container.id)

    def _wait_ready(self, database: Database) -> None:
        """Until the server answers twice, a second apart: images that initialise an empty
        volume run a short-lived setup server first, which must not take the import."""
        command = database.source.ready_command(database.credentials)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        answered = 0
        while True:
            result = run(self.client, database.container.id, command, timeout=30)
            answered = answered + 1 if result.exit_code == 0 else 0
            if answered == 2:
                return
            if time.monotonic() > deadline:
                raise RestoreFailed(f"{database.container.name} does not accept connections: {result.stderr}")
            time.sleep(1.0 if answered else 0.5)

    # Ending

    def _roll_back(
        self, run_row: RestoreRun, target: App, safety: Backup | None, cause: LifeboatError, request: RestoreRequest
    ) -> RestoreRun:
        if safety is None or safety.snapshot_id is None:
            return self._finish(run_row, RestorePhase.FAILED, f"{cause}; no safety backup to roll back to")
        try:
            current = discover(self.client, target.name, read_secret=self.read_secret)
            snapshot = self.repository.load_snapshot(safety.snapshot_id)
            back = RestoreRequest(safety.backup_id, stop_app=request.stop_app, verify=request.verify)
            self._apply(snapshot, current, self._plan(snapshot, current, back), run_row.id, back)
        except LifeboatError as err:
            return self._finish(
                run_row,
                RestorePhase.FAILED,
                f"{cause}; rolling back to safety backup {safety.backup_id} failed too: {err}",
            )
        return self._finish(
            run_row, RestorePhase.ROLLED_BACK, f"{cause}; the app runs on safety backup {safety.backup_id}"
        )

    def _finish(self, run_row: RestoreRun, phase: RestorePhase, message: str) -> RestoreRun:
        run_row.phase, run_row.message, run_row.completed_at = phase.value, message, self.clock()
        return self.catalog.save_restore_run(run_row)
