"""Forgetting backups: their snapshots leave the repository (space returns at the next
prune) and their rows leave the catalog. Retention after a policy's success, a removed
policy with deletionPolicy Delete and a DELETE of the API all forget this one way."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from controller.catalog.catalog import BackupFilter
from controller.catalog.models import Backup, BackupStatus
from controller.errors import LifeboatError
from controller.reconciler.retention import Dated, plan_retention
from controller.reconciler.runtime import Runtime, wall_clock
from controller.repository.repository import Repository
from controller.resources.backup_policy import Retention

log = logging.getLogger(__name__)
FORGET_LOCK_WAIT = timedelta(minutes=10)


def forget_backups(runtime: Runtime, repository: Repository, rows: list[Backup], lock_wait: timedelta) -> None:
    """Under the repository's exclusive lease; a row goes only after its snapshot went."""
    with repository.locked(True, "forget", wall_clock, lock_wait):
        for row in rows:
            if row.snapshot_id:
                repository.forget(row.snapshot_id)
            runtime.catalog.delete_backup(row.backup_id)


def apply_retention(
    runtime: Runtime, repository: Repository, policy: str, retention: Retention, zone: ZoneInfo
) -> None:
    """Runs only after a successful backup: a failing policy never loses old backups. A
    failure here is an event; the backup that triggered it stays completed."""
    rows = runtime.catalog.list_backups(BackupFilter(policy=policy, status=BackupStatus.COMPLETED, limit=10_000))
    plan = plan_retention([Dated(r.backup_id, r.created_at) for r in rows], retention, runtime.clock(), zone)
    if not plan.forget:
        return
    doomed = set(plan.forget)
    try:
        forget_backups(runtime, repository, [r for r in rows if r.backup_id in doomed], FORGET_LOCK_WAIT)
    except LifeboatError as err:
        log.warning("policy %s: retention failed: %s", policy, err)
        runtime.event("BackupPolicy", policy, "RetentionFailed", str(err), True)
        return
    message = f"retention removed {len(plan.forget)} backup(s): {', '.join(plan.forget)}"
    log.info("policy %s: %s", policy, message)
    runtime.event("BackupPolicy", policy, "RetentionApplied", message)
