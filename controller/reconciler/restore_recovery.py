"""Finishing a restore whose process died, before its app starts again: an app never runs on
torn data. A run killed while it wrote the app's data is applied again (a restore makes the
volumes identical to the snapshot, so it can be repeated) and checked; when that fails, or
when the run was already rolling back, the safety backup is put back. A run killed before
its first change simply failed. The Restore's status says which happened.

The containers the dead run stopped stay stopped meanwhile (the quiesce ledger holds them
back from `repair`), and are started by `repair` once the run has ended."""

from __future__ import annotations

from controller.catalog.models import RestoreRun, RestoreStage
from controller.errors import LifeboatError
from controller.host import Owner, host_name
from controller.reconciler.backup_run import LOCK_WAIT
from controller.reconciler.restore_run import RestoreRequest, RestoreRunner
from controller.reconciler.runtime import Runtime, wall_clock
from controller.resources.restore import RestorePhase


def finish_dead_restores(runtime: Runtime) -> list[str]:
    """Every dead run of this host finished; one note each. The controller does this at
    start-up, and `lifeboat repair` and every CLI verb that uses Docker before they start
    the containers a killed Lifeboat left stopped."""
    notes = []
    for run in dead_restore_runs(runtime):
        try:
            notes.append(finish_interrupted_restore(runtime, run))
        except LifeboatError as err:
            notes.append(f"could not finish restore {run.id} ({err}); app {run.target_app} stays stopped until it can")
    return notes


def dead_restore_runs(runtime: Runtime) -> list[RestoreRun]:
    """Running restore runs of this host whose process is gone (a live `lifeboat restore`
    beside the controller is left alone; rows from before schema 6 name no process)."""
    dead = []
    for run in runtime.catalog.restore_runs_in_phase(RestorePhase.RUNNING.value):
        owner = Owner.from_token(run.host, run.owner)
        if run.host and run.host != host_name():
            continue
        if owner is None or not owner.is_alive():
            dead.append(run)
    return dead


def finish_interrupted_restore(runtime: Runtime, run: RestoreRun) -> str:
    """What became of the run, one note. Raises LifeboatError when its repository or the
    Docker engine cannot be reached: the run stays Running and its app stays stopped."""
    runner = RestoreRunner(runtime)
    safety = f"; safety backup {run.safety_backup_id} holds the state before it" if run.safety_backup_id else ""
    if run.stage not in (RestoreStage.WRITING, RestoreStage.ROLLING_BACK):
        runner.finish(run, RestorePhase.FAILED, f"interrupted before anything changed{safety}")
        return f"restore {run.id} marked Failed: interrupted before anything changed"
    request = RestoreRequest.from_json(run.request)
    backup = runtime.catalog.get_backup(run.backup_id)
    repository = runtime.repositories.open(backup.storage)
    client = runtime.docker()
    safety_backup = runtime.catalog.get_backup(run.safety_backup_id) if run.safety_backup_id else None
    with repository.locked(False, "restore", wall_clock, LOCK_WAIT):
        if run.stage == RestoreStage.ROLLING_BACK:
            cause = LifeboatError("interrupted while rolling back; recovery put the safety backup back")
            ended = runner.roll_back(client, repository, run, run.target_app, safety_backup, cause, request)
            return f"restore {run.id}: {ended.phase}: {ended.message}"
        try:
            verified = runner.put_back(client, repository, backup, run.target_app, request, run.id)
        except LifeboatError as err:
            cause = LifeboatError(f"interrupted while writing the app's data; applying the restore again failed: {err}")
            ended = runner.roll_back(client, repository, run, run.target_app, safety_backup, cause, request)
            return f"restore {run.id}: {ended.phase}: {ended.message}"
    message = f"interrupted while writing the app's data; recovery applied the restore again: restored; {verified}"
    ended = runner.finish(run, RestorePhase.SUCCEEDED, message)
    return f"restore {run.id}: {ended.phase}: {ended.message}"
