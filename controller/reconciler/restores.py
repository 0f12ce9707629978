"""The Restore reconciler: a new Restore is run once, on the work queue under its target
app; its status is read from the catalog's run afterwards. A terminal phase is final."""

from __future__ import annotations

from controller.catalog.models import RestoreRun
from controller.errors import LifeboatError
from controller.reconciler.restore_preview import preview_restore
from controller.reconciler.restore_run import RestoreRequest, RestoreRunner, resolve_backup
from controller.reconciler.runtime import Runtime
from controller.reconciler.status import StatusWriter
from controller.reconciler.work_queue import WorkQueue
from controller.resources.loader import LoadedResource
from controller.resources.meta import set_condition
from controller.resources.restore import Restore, RestorePhase, RestoreProgress, RestoreStatus

TERMINAL = {RestorePhase.SUCCEEDED.value, RestorePhase.FAILED.value, RestorePhase.ROLLED_BACK.value}


def restore_request(restore: Restore) -> RestoreRequest:
    spec = restore.spec
    return RestoreRequest(
        backup_id=spec.backup,
        policy=spec.policy,
        point_in_time=spec.point_in_time,
        target_app=spec.target_app,
        safety_backup=spec.safety_backup,
        volumes=spec.volumes,
        volume_map=dict(spec.volume_map),
        exact_databases=spec.exact_databases,
        databases=spec.databases,
        restore_name=restore.metadata.name,
        stop_app=spec.stop_app,
        verify=spec.verify,
        definition=spec.definition,
        project_dir=spec.project_dir,
        force=spec.force,
        keep_ports=spec.keep_ports,
    )


class RestoreReconciler:
    def __init__(self, runtime: Runtime, queue: WorkQueue, status: StatusWriter) -> None:
        self.runtime, self.queue, self.status = runtime, queue, status
        self.previews: dict[str, tuple[RestorePhase, str]] = {}  # dry-run Restore → its outcome, until written

    def reconcile(self, item: LoadedResource) -> None:
        restore = item.resource
        assert isinstance(restore, Restore)
        name = restore.metadata.name
        old = restore.status or RestoreStatus()
        runs = self.runtime.catalog.restore_runs(name)
        if restore.spec.dry_run and old.phase.value not in TERMINAL:
            status = self._dry_run(item, restore, old)
        elif runs:
            status = self._status_of(old, runs[-1], item)
        elif old.phase.value in TERMINAL:
            return  # finished before this catalog knew it: never run twice
        else:
            status = old.model_copy(deep=True)
            request = restore_request(restore)
            target = request.target_app or self._source_app(request)
            self.queue.submit(target or f"restore:{name}", lambda: self.run(request))
            status.phase = RestorePhase.PENDING
        status.observed_generation = item.generation
        self.status.write(item, status)

    def _dry_run(self, item: LoadedResource, restore: Restore, old: RestoreStatus) -> RestoreStatus:
        """A dry run records no restore run: its outcome goes into the status once, then the
        phase is terminal and it never runs again."""
        status = old.model_copy(deep=True)
        outcome = self.previews.pop(restore.metadata.name, None)
        if outcome is None:
            request = restore_request(restore)
            self.queue.submit(request.target_app or f"restore:{restore.metadata.name}", lambda: self.preview(request))
            status.phase = RestorePhase.PENDING
            return status
        status.phase, status.message = outcome
        succeeded = status.phase == RestorePhase.SUCCEEDED
        condition = self.status.condition("Succeeded", succeeded, "DryRun", status.message, item)
        status.conditions = set_condition(status.conditions, condition)
        return status

    def preview(self, request: RestoreRequest) -> None:
        assert request.restore_name is not None
        try:
            preview = preview_restore(self.runtime, request)
            outcome = (RestorePhase.SUCCEEDED, "dry run, nothing was changed: " + " ".join(preview.lines()))
        except LifeboatError as err:
            outcome = (RestorePhase.FAILED, f"dry run: the restore could not run: {err}")
        self.previews[request.restore_name] = outcome

    def run(self, request: RestoreRequest) -> None:
        if request.restore_name and self.runtime.catalog.restore_runs(request.restore_name):
            return  # another pass queued it first
        RestoreRunner(self.runtime).run(request)

    def _source_app(self, request: RestoreRequest) -> str | None:
        try:
            return resolve_backup(self.runtime.catalog, request, self.runtime.clock()).app_id
        except LifeboatError:
            return None

    def _status_of(self, old: RestoreStatus, run: RestoreRun, item: LoadedResource) -> RestoreStatus:
        status = old.model_copy(deep=True)
        status.phase = RestorePhase(run.phase)
        status.backup_id, status.safety_backup_id = run.backup_id, run.safety_backup_id
        status.started_at, status.completed_at, status.message = run.started_at, run.completed_at, run.message
        step = self.runtime.restores.get(run.id) if run.phase == RestorePhase.RUNNING.value else None
        status.progress = RestoreProgress(phase=step.phase, files=step.files, bytes=step.bytes) if step else None
        if run.phase in TERMINAL:
            succeeded = run.phase == RestorePhase.SUCCEEDED.value
            condition = self.status.condition("Succeeded", succeeded, run.phase, run.message, item)
            status.conditions = set_condition(status.conditions, condition)
        return status
