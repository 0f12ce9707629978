"""A restore run, whoever asked for it (a Restore resource, the API, the CLI), so that the app
runs afterwards, always (DESIGN.md §6). Exactly one catalog row per run, Running before the
first check and before any change.

resolve the backup → plan (restore_plan.py: the snapshot readable, a place in the target
for every volume, mount and dump) → safety backup of the target (default on) → stop the
target's running containers (recorded, so `repair` can start them after a crash) → volumes
and mounts made identical to the snapshot → the check: every restored path compared with
the snapshot, content included, while the app is still stopped → each database started
alone and its dump streamed in → start what was running, wait for health. On any failure
after the first change, a failed check included: put the safety backup back the same way
(checked too), start the app, and end RolledBack naming the cause."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from controller.apps.database_load import load_dump, stop_container
from controller.apps.discovery import app_exists
from controller.apps.docker_api import DockerClient
from controller.apps.quiesce import Quiescer
from controller.apps.recreate import start_app
from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus, RestoreRun, RestoreStage
from controller.errors import BackupNotFound, LifeboatError, RestoreFailed
from controller.host import Owner
from controller.reconciler.app_rebuild import RebuildOptions, RebuildPlan, plan_rebuild, rebuild_app
from controller.reconciler.backup_run import LOCK_WAIT, BackupRequest, BackupRunner
from controller.reconciler.database_check import DatabaseCheck, check_database
from controller.reconciler.notices import Subject, restore_ended
from controller.reconciler.restore_plan import RestorePlan, app_snapshot, plan_restore
from controller.reconciler.runtime import RestoreStep, Runtime, wall_clock
from controller.repository.comparer import Comparer
from controller.repository.file_reader import open_content
from controller.repository.repository import Repository
from controller.repository.restorer import RestoreProgress, Restorer, find_node
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
    volume_map: dict[str, str] = field(default_factory=dict)  # snapshot volume key → volume to write it into
    databases: list[str] | None = None  # database services to restore; None: all
    restore_name: str | None = None  # the Restore resource this run belongs to
    stop_app: bool = True  # False: files are replaced under the running containers
    verify: bool = True  # False: containers started again are not waited on (health checks)
    exact_databases: bool = False  # drop the databases the backup did not hold
    definition: bool = False  # put back the app's project files and images too (undo an upgrade)
    project_dir: str | None = None  # where a recreated app's project folder goes; default: where it was
    force: bool = False  # write a recreated app's project folder over other content
    keep_ports: bool = False  # a clone keeps the source's published host ports

    def rebuild_options(self, replace: bool) -> RebuildOptions:
        return RebuildOptions(self.project_dir, self.force, self.keep_ports, replace)

    def to_json(self) -> str:
        """What a run records, so that recovery can apply the same restore again."""
        return json.dumps({**dataclasses.asdict(self), "point_in_time": None})

    @classmethod
    def from_json(cls, text: str) -> RestoreRequest:
        return cls(**json.loads(text)) if text else cls()


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
    def __init__(self, runtime: Runtime, announce: bool = True) -> None:
        """`announce` False: a drill's restore into its clone; the drill tells the outcome."""
        self.runtime, self.announce = runtime, announce

    def run(self, request: RestoreRequest) -> RestoreRun:
        """Returns the finished run: Succeeded, RolledBack, or Failed (with "nothing was
        changed" when it stopped before the first change)."""
        try:
            backup: Backup | None = resolve_backup(self.runtime.catalog, request, self.runtime.clock())
        except LifeboatError as err:
            backup, unresolved = None, err
        target_name = request.target_app or (backup.app_id if backup else "")
        owner = Owner.this_process()
        run = self.runtime.catalog.save_restore_run(
            RestoreRun(
                id=f"restore-{self.runtime.clock().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                restore_name=request.restore_name,
                backup_id=backup.backup_id if backup else (request.backup_id or ""),
                target_app=target_name,
                phase=RestorePhase.RUNNING.value,
                started_at=self.runtime.clock(),
                host=owner.host,
                owner=owner.token,
                request=request.to_json(),
            )
        )
        if backup is None:
            return self.finish(run, RestorePhase.FAILED, f"nothing was changed: {unresolved}")
        log.info("restore %s of backup %s into app %s starting", run.id, backup.backup_id, target_name)
        try:
            for attempt in self.runtime.retrying("App", target_name):
                with attempt:
                    repository = self.runtime.repositories.open(backup.storage)
                    client = self.runtime.docker()
            with repository.locked(False, "restore", wall_clock, LOCK_WAIT):
                return self._restore(run, backup, repository, client, target_name, request)
        except LifeboatError as err:
            return self.finish(run, RestorePhase.FAILED, f"nothing was changed: {err}")

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
        self.step(run.id, "planning")
        exists = app_exists(client, target_name)
        rebuild = None
        if not exists or request.definition:
            rebuild = self.plan_rebuild(client, repository, backup, target_name, request, exists)
        plan = self.plan(client, repository, backup, target_name, request) if rebuild is None else None
        safety: Backup | None = None
        if request.safety_backup and exists:
            self.step(run.id, "safety backup")
            try:
                safety = self._safety_backup(target_name, backup)
            except LifeboatError as err:
                raise LifeboatError(
                    f"the safety backup failed ({err}); fix it, or restore with the safety backup disabled"
                ) from None
            run = self.runtime.catalog.change_restore_run(run.id, safety_backup_id=safety.backup_id)
        if rebuild is not None and not exists:
            # From here on the app exists: applying this again (recovery) replaces what was made.
            request = dataclasses.replace(request, definition=True)
            self.runtime.catalog.change_restore_run(run.id, request=request.to_json())
        try:
            self.runtime.catalog.change_restore_run(run.id, stage=RestoreStage.WRITING)
            if rebuild is None:
                assert plan is not None
                verified, notes = self.apply(client, repository, plan, run.id, request), plan.notes
            else:
                verified, notes = self.rebuild(client, repository, backup, rebuild, run.id, request)
        except LifeboatError as err:
            if not exists:
                where = f" in {rebuild.folder}" if rebuild and rebuild.folder else ""
                message = f"{err}; the recreated app {target_name} is left stopped{where} for inspection"
                return self.finish(run, RestorePhase.FAILED, message)
            return self.roll_back(client, repository, run, target_name, safety, err, request)
        return self.finish(run, RestorePhase.SUCCEEDED, "; ".join(["restored", verified, *notes]))

    def plan_rebuild(
        self,
        client: DockerClient,
        repository: Repository,
        backup: Backup,
        target: str,
        request: RestoreRequest,
        exists: bool,
    ) -> RebuildPlan:
        snapshot = app_snapshot(repository, backup)
        return plan_rebuild(client, repository, snapshot, backup.backup_id, target, request.rebuild_options(exists))

    def rebuild(
        self,
        client: DockerClient,
        repository: Repository,
        backup: Backup,
        rebuild: RebuildPlan,
        operation: str,
        request: RestoreRequest,
    ) -> tuple[str, list[str]]:
        """The app put back (folder, images, containers), then its data, then started."""
        self.step(operation, "recreating the app" if not rebuild.options.replace else "replacing the app")
        rebuild_app(client, repository, rebuild)
        plan = self.plan(client, repository, backup, rebuild.project, request)
        verified = self.apply(client, repository, plan, operation, request)
        self.step(operation, "starting the app")
        start_app(client, rebuild.project, rebuild.compose)
        return f"{rebuild.describe()}; {verified}", plan.notes

    def put_back(
        self,
        client: DockerClient,
        repository: Repository,
        backup: Backup,
        target: str,
        request: RestoreRequest,
        operation: str,
    ) -> str:
        """The restore applied to an app that exists: its data, and with `definition` the app
        itself first (a rollback, recovery applying a run again)."""
        if request.definition:
            rebuild = self.plan_rebuild(client, repository, backup, target, request, exists=True)
            return self.rebuild(client, repository, backup, rebuild, operation, request)[0]
        plan = self.plan(client, repository, backup, target, request)
        return self.apply(client, repository, plan, operation, request)

    def plan(
        self, client: DockerClient, repository: Repository, backup: Backup, target: str, request: RestoreRequest
    ) -> RestorePlan:
        return plan_restore(
            client,
            repository,
            backup,
            target,
            request.volumes,
            request.databases,
            request.volume_map,
            self.runtime.read_secret,
        )

    def _safety_backup(self, target: str, restored: Backup) -> Backup:
        request = BackupRequest(
            app=target,
            storage=restored.storage,
            backup_type=BackupType.INCREMENTAL,
            consistency=Consistency.PAUSE,
            description=f"safety backup before restoring {restored.backup_id}",
            tags={"safety": "true"},
        )
        return BackupRunner(self.runtime).run(request)

    def apply(
        self, client: DockerClient, repository: Repository, plan: RestorePlan, operation: str, request: RestoreRequest
    ) -> str:
        """Stop, make the data identical to the plan's snapshot, prove it while the app is still
        stopped, load the dumps, start what was running. Returns what was verified."""
        quiescer = Quiescer(
            client,
            self.runtime.ledger,
            plan.target.name,
            plan.target.containers if request.stop_app else [],
            "stopped",
            operation,
            self.runtime.clock,
            wait_until_up=request.verify,
        )
        self.step(operation, "stopping the app")
        quiescer.quiesce()
        try:
            for subpath, path in plan.trees:
                self._write(repository, plan, subpath, path, operation)
            self.step(operation, "checking")
            verified = self._check(repository, plan) if request.stop_app else "not verified: the app kept running"
            databases = DatabaseCheck()
            for subpath, database in plan.databases:
                self.step(operation, f"loading {subpath}")
                content = open_content(repository, find_node(repository, plan.snapshot, subpath))
                load_dump(client, database, subpath, _chunks(content), was_running=True)
                recorded = plan.inventories.get(subpath)
                if recorded is not None:
                    self.step(operation, f"checking {subpath}")
                    check_database(client, database, subpath, recorded, request.exact_databases, databases)
                if not database.container.running:
                    stop_container(client, database)
            if plan.databases:
                verified += "; " + databases.describe()
        finally:
            self.step(operation, "starting the app")
            quiescer.resume()
        return verified

    def _write(self, repository: Repository, plan: RestorePlan, subpath: str, path: Path, run_id: str) -> None:
        phase = f"writing {subpath}"
        self.step(run_id, phase)

        def written(progress: RestoreProgress) -> None:
            self.runtime.restores[run_id] = RestoreStep(phase, progress.files, progress.bytes)

        try:
            Restorer(repository, progress=written).restore(plan.snapshot, path, subpath=subpath, delete=True)
        except OSError as err:
            raise RestoreFailed(f"{err.strerror} (writing {subpath} into {path})") from None

    def step(self, run_id: str, phase: str) -> None:
        """A new phase: in the progress the API and the status show, and a log line."""
        self.runtime.restores[run_id] = RestoreStep(phase)
        log.info("restore %s: %s", run_id, phase)

    def _check(self, repository: Repository, plan: RestorePlan) -> str:
        """Every restored path against the snapshot (type, size, mode, owner, time, symlink
        target, content). Raises RestoreFailed naming the first differences."""
        files = size = 0
        for subpath, path in plan.trees:
            diff = Comparer(repository).compare(plan.snapshot, subpath, path)
            if not diff.is_empty():
                raise RestoreFailed(f"{subpath} differs from the backup after the restore wrote it: {diff.describe()}")
            files, size = files + diff.files, size + diff.bytes
        return f"verified {files} files ({size} bytes) in {len(plan.trees)} volume(s) and mount(s)"

    def roll_back(
        self,
        client: DockerClient,
        repository: Repository,
        run: RestoreRun,
        target: str,
        safety: Backup | None,
        cause: LifeboatError,
        request: RestoreRequest,
    ) -> RestoreRun:
        """Put the safety backup back (checked too); RolledBack, or Failed when that fails."""
        if safety is None or safety.snapshot_id is None:
            return self.finish(run, RestorePhase.FAILED, f"{cause}; no safety backup to roll back to")
        try:
            self.runtime.catalog.change_restore_run(run.id, stage=RestoreStage.ROLLING_BACK)
            back = RestoreRequest(
                safety.backup_id, stop_app=request.stop_app, verify=request.verify, definition=request.definition
            )
            self.put_back(client, repository, safety, target, back, run.id)
        except LifeboatError as err:
            message = f"{cause}; rolling back to safety backup {safety.backup_id} failed too: {err}"
            return self.finish(run, RestorePhase.FAILED, message)
        return self.finish(run, RestorePhase.ROLLED_BACK, f"{cause}; the app runs on safety backup {safety.backup_id}")

    def finish(self, run: RestoreRun, phase: RestorePhase, message: str) -> RestoreRun:
        """The run's end, its event (on the target app) and its log line."""
        finished = self.runtime.catalog.change_restore_run(
            run.id, phase=phase.value, message=message, completed_at=self.runtime.clock()
        )
        self.runtime.restores.pop(run.id, None)
        succeeded = phase == RestorePhase.SUCCEEDED
        (log.info if succeeded else log.warning)("restore %s: %s: %s", run.id, phase.value, message)
        self.runtime.event("App", run.target_app or "-", f"Restore{phase.value}", f"{run.id}: {message}", not succeeded)
        if self.announce:
            subject = _restore_subject(self.runtime.catalog, run)
            restore_ended(self.runtime, subject, run.id, phase.value, f"restore {run.id}: {message}")
        return finished


def _restore_subject(catalog: Catalog, run: RestoreRun) -> Subject:
    """The target app, with the policy and storage of the backup restored (when it is known)."""
    backup = catalog.find_backup(run.backup_id)
    policy, storage = (backup.policy or "", backup.storage or "") if backup else ("", "")
    return Subject("App", run.target_app or "-", app=run.target_app or "", policy=policy, storage=storage)


def _chunks(content: BinaryIO) -> Iterator[bytes]:
    while chunk := content.read(_DUMP_CHUNK):
        yield chunk
