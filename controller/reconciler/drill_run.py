"""A restore drill: the proof that a policy's backup brings its app back. The backup (the
policy's latest completed one, or a given one) is restored as a throwaway clone, a project
whose name no real app has (lbdrill-HEX), in a temporary folder, with its own volumes and
no published ports; the run waits for its health checks, runs the policy's checks in it,
measures the time from start to all checks passed (the RTO), and removes the clone and its
folder, whatever happened. The source app is never touched.

A backup that cannot be read or restored is a failed drill, not an error. Each drill is a
catalog row (Running first, with the process that runs it), so that a dead drill's clone is
removed by recovery (`finish_dead_drills`)."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from controller.apps.discovery import discover
from controller.apps.drill_checks import CheckResult, run_check
from controller.apps.recreate import remove_project
from controller.catalog.catalog import BackupFilter
from controller.catalog.models import Backup, BackupStatus, Drill, DrillResult
from controller.errors import BackupNotFound, LifeboatError
from controller.host import Owner, host_name
from controller.reconciler.notices import Subject, drill_ended
from controller.reconciler.restore_run import RestoreRequest, RestoreRunner
from controller.reconciler.runtime import Runtime
from controller.resources.backup_policy import BackupPolicy, Verify
from controller.resources.restore import RestorePhase

log = logging.getLogger(__name__)
CLONE_PREFIX = "lbdrill-"


@dataclass
class DrillRequest:
    policy: str  # whose drill it is (the policy, or the app for a backup of no policy)
    app: str
    verify: Verify | None  # the checks and the time limit
    backup_id: str | None = None  # default: the policy's latest completed backup

    @classmethod
    def from_policy(cls, policy: BackupPolicy, backup_id: str | None = None) -> DrillRequest:
        if policy.spec.app is None:
            raise LifeboatError(f'BackupPolicy "{policy.metadata.name}" backs up host paths: there is no app to drill')
        return cls(policy.metadata.name, policy.spec.app, policy.spec.verify, backup_id)


class DrillRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def create(self, request: DrillRequest) -> Drill:
        """The drill's row (Running) and its clone's name and folder. Raises LifeboatError,
        recording nothing, when there is no backup to drill."""
        backup = self._backup(request)
        clone = f"{CLONE_PREFIX}{secrets.token_hex(4)}"
        folder = Path(tempfile.mkdtemp(prefix=f"lifeboat-{clone}-"))
        owner = Owner.this_process()
        return self.runtime.catalog.save_drill(
            Drill(
                id=f"drill-{self.runtime.clock().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
                policy=request.policy,
                app=request.app,
                backup_id=backup.backup_id,
                clone=clone,
                folder=str(folder),
                host=owner.host,
                owner=owner.token,
                started_at=self.runtime.clock(),
            )
        )

    def run(self, request: DrillRequest, drill: Drill | None = None) -> Drill:
        """The finished drill (`drill`: its row, made by create()): Passed or Failed."""
        drill = drill or self.create(request)
        backup = self.runtime.catalog.get_backup(drill.backup_id)
        log.info("drill %s of backup %s into clone %s starting", drill.id, backup.backup_id, drill.clone)
        with self.runtime.drills:  # limits.max_concurrent_drills: the RTO is measured, not contended
            started = time.monotonic()
            try:
                results, failure = self._restore_and_check(request, backup, drill, started)
            finally:
                clean_up(self.runtime, drill)
        duration = round(time.monotonic() - started, 3) if failure is None else None
        return self._finish(drill, results, failure, duration)

    def _backup(self, request: DrillRequest) -> Backup:
        if request.backup_id:
            given = self.runtime.catalog.get_backup(request.backup_id)
            if given.app_id != request.app:
                raise LifeboatError(
                    f"backup {given.backup_id} is of {given.app_id}, not of app {request.app} that {request.policy} "
                    "drills: give a backup of that app"
                )
            return given
        name = request.policy
        found = self.runtime.catalog.list_backups(
            BackupFilter(policy=name, status=BackupStatus.COMPLETED, safety=False, limit=1)
        )
        if not found:
            raise BackupNotFound(f'BackupPolicy "{name}" has no completed backup to drill')
        return found[0]

    def _restore_and_check(
        self, request: DrillRequest, backup: Backup, drill: Drill, started: float
    ) -> tuple[list[CheckResult], str | None]:
        """(each check's result, why the drill failed or None). The restore run is named
        after the drill: it is the drill's, not a restore `get restores` lists."""
        verify = request.verify
        timeout = float(verify.timeout_seconds) if verify else 900.0
        clone = drill.clone
        restore = RestoreRequest(
            backup.backup_id,
            target_app=clone,
            safety_backup=False,
            project_dir=drill.folder,
            force=True,
            restore_name=drill.id,
        )
        run = RestoreRunner(self.runtime, announce=False).run(restore)
        if run.phase != RestorePhase.SUCCEEDED.value:
            return [], f"the restore did not succeed: {run.message}"
        try:
            app = discover(self.runtime.docker(), clone, read_secret=self.runtime.read_secret)
        except LifeboatError as err:
            return [], f"the restored clone cannot be read: {err}"
        results: list[CheckResult] = []
        for check in verify.checks if verify else []:
            left = timeout - (time.monotonic() - started)
            if left <= 0:
                return results, f"timed out after {timeout:g} s, before check {check.named}"
            results.append(run_check(self.runtime.docker(), app, check, left))
        failed = [r for r in results if not r.passed]
        if failed:
            return results, f"check {failed[0].check} failed: {failed[0].detail}"
        return results, None

    def _finish(self, drill: Drill, results: list[CheckResult], failure: str | None, duration: float | None) -> Drill:
        passed = failure is None
        message = failure or f"restored and {len(results)} check(s) passed in {duration:g} s"
        finished = self.runtime.catalog.finish_drill(
            drill.id,
            DrillResult.PASSED.value if passed else DrillResult.FAILED.value,
            message,
            duration,
            json.dumps([r.to_json() for r in results]),
            self.runtime.clock(),
        )
        reason = "DrillPassed" if passed else "DrillFailed"
        (log.info if passed else log.warning)("drill %s of %s: %s", drill.id, drill.policy, message)
        told = f"{drill.id} (backup {drill.backup_id}): {message}"
        self.runtime.event("BackupPolicy", drill.policy, reason, told, not passed)
        backup = self.runtime.catalog.find_backup(drill.backup_id)
        storage = (backup.storage or "") if backup else ""
        subject = Subject("BackupPolicy", drill.policy, app=drill.app, policy=drill.policy, storage=storage)
        drill_ended(self.runtime, subject, drill.id, f"drill {told}" if failure else None, f"drill {told}")
        return finished


def clean_up(runtime: Runtime, drill: Drill) -> None:
    """The clone's containers, volumes, networks and folder removed (what exists of them)."""
    try:
        remove_project(runtime.docker(), drill.clone)
    except LifeboatError as err:
        log.warning("drill %s: removing clone %s: %s", drill.id, drill.clone, err)
    if drill.folder and Path(drill.folder).name.startswith(f"lifeboat-{CLONE_PREFIX}"):
        shutil.rmtree(drill.folder, ignore_errors=True)


def finish_dead_drills(runtime: Runtime) -> list[str]:
    """Drills of this host whose process died: their clones removed, ended Failed."""
    notes = []
    for drill in runtime.catalog.drills(running=True):
        owner = Owner.from_token(drill.host, drill.owner)
        if drill.host != host_name() or (owner is not None and owner.is_alive()):
            continue
        clean_up(runtime, drill)
        message = f"interrupted (its process died); clone {drill.clone} was removed"
        runtime.catalog.finish_drill(drill.id, DrillResult.FAILED.value, message, None, drill.checks, runtime.clock())
        notes.append(f"drill {drill.id}: {message}")
    return notes
