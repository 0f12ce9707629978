"""What a restore will do to its target, decided before anything changes: the backup must be
completed and readable (every tree authentic, every blob indexed), the target app must
exist, and every snapshot volume, bind mount and dump must have a place in it. The restore
run carries the plan out; the preview (a dry run) shows it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.apps.datasources.inventory import Inventory
from controller.apps.discovery import App, Database, discover
from controller.apps.docker_api import DockerClient
from controller.catalog.models import Backup, BackupStatus
from controller.errors import BackupCorrupted, BackupNotFound, LifeboatError, RestoreFailed
from controller.reconciler.restore_targets import volume_targets
from controller.reconciler.snapshot_layout import children, read_manifest
from controller.repository.records import Snapshot
from controller.repository.repository import Repository
from controller.resources.meta import SecretRef


@dataclass
class RestorePlan:
    snapshot: Snapshot
    target: App
    trees: list[tuple[str, Path]] = field(default_factory=list)  # (snapshot folder, host path made identical to it)
    databases: list[tuple[str, Database]] = field(default_factory=list)  # (dump in the snapshot, target database)
    inventories: dict[str, Inventory] = field(default_factory=dict)  # dump → what it held (counted engines)
    notes: list[str] = field(default_factory=list)


def plan_restore(
    client: DockerClient,
    repository: Repository,
    backup: Backup,
    target_name: str,
    volumes: list[str] | None,
    databases: list[str] | None,
    volume_map: dict[str, str],
    read_secret: Callable[[SecretRef], str],
) -> RestorePlan:
    """The plan; raises LifeboatError (changing nothing) when the restore cannot be done.
    `volumes` and `databases` select by key and service (None: all)."""
    snapshot = app_snapshot(repository, backup)
    target = discover(client, target_name, read_secret=read_secret)
    plan = RestorePlan(snapshot, target)
    manifest = read_manifest(repository, snapshot)
    keys = [node.name for node in children(repository, snapshot, "volumes") if volumes is None or node.name in volumes]
    plan.trees = [(f"volumes/{key}", path) for key, path in volume_targets(client, target, manifest, keys, volume_map)]
    for mount in manifest.get("mounts", []):
        path = target.path_mounted_at(mount["service"], mount["destination"])
        if path is None:
            plan.notes.append(f"{mount['path']} skipped: {target.name} has no bind mount {mount['destination']}")
        else:
            plan.trees.append((mount["path"], path))
    plan.inventories = {
        d["path"]: d["inventory"] for d in manifest.get("databases", []) if d.get("inventory") is not None
    }
    for node in children(repository, snapshot, "databases"):
        service = node.name.rsplit(".", 1)[0]
        if databases is not None and service not in databases:
            continue
        database = next((d for d in target.databases if d.service == service), None)
        if database is None:
            raise RestoreFailed(f"app {target.name} has no database service {service!r} to restore into")
        plan.databases.append((f"databases/{node.name}", database))
    return plan


def app_snapshot(repository: Repository, backup: Backup) -> Snapshot:
    """The backup's snapshot, when it is a completed, readable backup of an app: checked
    before anything changes, whether the app is restored into or put back whole. Else
    RestoreFailed saying how its files can be had, or BackupCorrupted."""
    if backup.status != BackupStatus.COMPLETED or backup.snapshot_id is None:
        raise BackupNotFound(f"backup {backup.backup_id} is {backup.status.value}, not restorable")
    snapshot = repository.load_snapshot(backup.snapshot_id)
    if "app" not in snapshot.tags:
        raise RestoreFailed(
            f"backup {backup.backup_id} is of host paths (policy {backup.policy}), not of an app: write its files "
            f"into a directory with `lifeboat restore {backup.backup_id} --target DIR [--path PATH]`"
        )
    _check_readable(repository, snapshot, backup)
    return snapshot


def _check_readable(repository: Repository, snapshot: Snapshot, backup: Backup) -> None:
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
