"""Make the catalog agree with a repository (`lifeboat catalog sync`): the catalog is a
cache, the repository the truth. After a host is lost, a new host with the storage's
settings and its passphrase (or recovery kit) rebuilds the catalog from the snapshots and
can list and restore every backup. Also after another host's retention forgot snapshots.

Every snapshot Lifeboat takes carries its backup id, app, policy and type in its tags, so
the rows come back with their ids: Restore resources and API links that name them work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus
from controller.repository.archiver import snapshot_problems
from controller.repository.repository import Repository, SnapshotEntry


@dataclass(frozen=True)
class SyncReport:
    storage: str
    added: list[str]  # backup ids recovered from snapshots
    removed: list[str]  # completed rows whose snapshot is no longer in the repository
    unchanged: int


def sync_catalog(catalog: Catalog, repository: Repository, storage: str) -> SyncReport:
    entries = {e.snapshot.tags.get("backup") or f"snapshot-{e.id[:16]}": e for e in repository.snapshots()}
    rows = {r.backup_id: r for r in catalog.list_backups(BackupFilter(limit=1_000_000)) if r.storage == storage}
    added = []
    for backup_id, entry in entries.items():
        if backup_id not in rows:
            catalog.add_backup(_row(backup_id, entry, storage, repository.storage.describe()))
            added.append(backup_id)
    snapshot_ids = {e.id for e in entries.values()}
    removed = [
        backup_id
        for backup_id, row in rows.items()
        if row.status == BackupStatus.COMPLETED and row.snapshot_id not in snapshot_ids
    ]
    for backup_id in removed:
        catalog.delete_backup(backup_id)
    return SyncReport(storage, sorted(added), sorted(removed), len(rows) - len(removed))


def _row(backup_id: str, entry: SnapshotEntry, storage: str, location: str) -> Backup:
    snapshot, tags = entry.snapshot, entry.snapshot.tags
    subject = tags.get("app") or tags.get("policy") or "paths"
    when = datetime.fromisoformat(snapshot.time.replace("Z", "+00:00"))
    problems = snapshot_problems(snapshot)
    safety = " (a safety backup taken before a restore)" if tags.get("safety") == "true" else ""
    return Backup(
        backup_id=backup_id,
        app_id=subject,
        app_name=subject,
        backup_type=tags.get("type", "incremental"),
        description=f"recovered from the repository by catalog sync{safety}",
        safety=bool(safety),
        size_bytes=snapshot.summary.bytes,
        storage_location=location,
        status=BackupStatus.FAILED if problems else BackupStatus.COMPLETED,
        created_at=when,
        completed_at=when,
        error_message=f"{len(problems)} problem(s): " + "; ".join(problems[:5]) if problems else None,
        error_code="BACKUP_CREATE_FAILED" if problems else None,
        policy=tags.get("policy"),
        storage=storage,
        snapshot_id=entry.id,
        parent_id=snapshot.parent,
        added_bytes=snapshot.summary.bytes_added,
        files=snapshot.summary.files,
        host=snapshot.hostname,
    )
