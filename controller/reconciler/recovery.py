"""Start-up after a crash (DESIGN.md §3): this host's backups whose process is gone become
failed, restores whose process is gone are finished (applied again, or rolled back), and
containers a killed process stopped or paused are started again."""

from __future__ import annotations

from controller.apps.quiesce import repair
from controller.catalog.catalog import BackupFilter
from controller.catalog.models import BackupOutcome, BackupStatus
from controller.errors import BackupCreateFailed, LifeboatError
from controller.host import Owner, host_name
from controller.reconciler.drill_run import finish_dead_drills
from controller.reconciler.restore_recovery import finish_dead_restores
from controller.reconciler.runtime import Runtime


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
    notes += finish_dead_restores(runtime)  # before any container starts: never on torn data
    notes += finish_dead_drills(runtime)  # a dead drill's clone removed
    try:
        notes += [f"started {r.container_name} again ({r.outcome})" for r in repair(runtime.docker(), runtime.ledger)]
    except LifeboatError as err:
        notes.append(f"could not repair containers: {err}")
    return notes
