"""Start-up after a crash (DESIGN.md §3): this host's backups whose process is gone become
failed, restores left Running become Failed (naming their safety backup), and containers
a killed process stopped or paused are started again."""

from __future__ import annotations

from controller.apps.quiesce import repair
from controller.catalog.catalog import BackupFilter
from controller.catalog.models import BackupOutcome, BackupStatus
from controller.errors import BackupCreateFailed, LifeboatError
from controller.host import Owner, host_name
from controller.reconciler.runtime import Runtime
from controller.resources.restore import RestorePhase


def recover(runtime: Runtime) -> list[str]:
    """What was repaired, one note each."""
    catalog, notes, host = runtime.catalog, [], host_name()
    unfinished = [
        row
        for status in (BackupStatus.PENDING, BackupStatus.IN_PROGRESS)
        for row in catalog.list_backups(BackupFilter(status=status, limit=10_000))
    ]
    for row in unfinished:
        owner = Owner.from_token(row.host, row.owner)
        if row.host != host or (owner is not None and owner.is_alive()):
            continue  # another host's, or a live process's (a `lifeboat backup` beside us)
        error = (BackupCreateFailed.code, "interrupted: the process taking it stopped")
        catalog.finish_backup(row.backup_id, BackupOutcome(runtime.clock(), None, error), [])
        notes.append(f"backup {row.backup_id} marked failed (interrupted)")
    for run in catalog.restore_runs_in_phase(RestorePhase.RUNNING.value):
        safety = f"; safety backup {run.safety_backup_id} holds the state before it" if run.safety_backup_id else ""
        message = f"interrupted by a controller restart; the app's containers were started again{safety}"
        catalog.change_restore_run(
            run.id, phase=RestorePhase.FAILED.value, message=message, completed_at=runtime.clock()
        )
        notes.append(f"restore {run.id} marked Failed (interrupted)")
    try:
        notes += [f"started {r.container_name} again ({r.outcome})" for r in repair(runtime.docker(), runtime.ledger)]
    except LifeboatError as err:
        notes.append(f"could not repair containers: {err}")
    return notes
