"""A restore's preview (a dry run): the plan a restore would carry out and what it would
change in each volume and mount (files to add, change and delete, content compared), the
dumps it would load and the containers it would stop. It changes nothing, takes no safety
backup and records no restore run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controller.apps.datasources.inventory import Inventory
from controller.apps.discovery import app_exists
from controller.reconciler.app_rebuild import plan_rebuild
from controller.reconciler.backup_run import LOCK_WAIT
from controller.reconciler.restore_plan import app_snapshot, plan_restore
from controller.reconciler.restore_run import RestoreRequest, resolve_backup
from controller.reconciler.runtime import Runtime, wall_clock
from controller.repository.comparer import Comparer, TreeDiff


@dataclass
class RestorePreview:
    backup_id: str
    target_app: str
    trees: list[tuple[str, Path, TreeDiff]] = field(default_factory=list)  # (snapshot folder, host path, changes)
    dumps: list[tuple[str, str]] = field(default_factory=list)  # (dump, container it would be loaded into)
    stopping: list[str] = field(default_factory=list)  # containers that would be stopped and started
    notes: list[str] = field(default_factory=list)
    inventories: dict[str, Inventory] = field(default_factory=dict)  # dump → its databases, tables and rows
    rebuild: str | None = None  # the app itself put back first (missing here, or --definition)

    def would_change(self) -> bool:
        """Whether the restore would change anything: the app, a file, or a database (loading
        a dump replaces its databases, so any dump counts)."""
        return bool(self.rebuild or self.dumps) or any(not diff.is_empty() for _, _, diff in self.trees)

    def to_dict(self) -> dict[str, object]:
        """The preview as data (the CLI's -o json, the API's answer)."""
        return {
            "backup_id": self.backup_id,
            "target_app": self.target_app,
            "would_change": self.would_change(),
            "trees": [
                {"path": subpath, "host_path": str(path), "add": d.added, "change": d.changed, "delete": d.deleted}
                for subpath, path, d in self.trees
            ],
            "dumps": [
                {"path": dump, "container": container, "databases": self.inventories.get(dump)}
                for dump, container in self.dumps
            ],
            "stopping": self.stopping,
            "notes": self.notes,
            "rebuild": self.rebuild,
        }

    def lines(self) -> list[str]:
        lines = [f"restore of backup {self.backup_id} into app {self.target_app} would:"]
        lines += [f"  first: {self.rebuild}; then its data written and the app started"] if self.rebuild else []
        lines += [f"  {subpath} ({path}): {diff.describe()}" for subpath, path, diff in self.trees]
        lines += [f"  {dump}: load into {container}" for dump, container in self.dumps]
        lines += [
            f"    {name}: {len(tables)} tables, {sum(tables.values())} rows"
            for dump, _ in self.dumps
            for name, tables in sorted(self.inventories.get(dump, {}).items())
        ]
        lines += [f"  stop and start again: {', '.join(self.stopping)}"] if self.stopping else []
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def preview_restore(runtime: Runtime, request: RestoreRequest) -> RestorePreview:
    """Raises LifeboatError when the restore could not run (the same checks as the run's)."""
    backup = resolve_backup(runtime.catalog, request, runtime.clock())
    target_name = request.target_app or backup.app_id
    repository = runtime.repositories.open(backup.storage)
    client = runtime.docker()
    with repository.locked(False, "restore-preview", wall_clock, LOCK_WAIT):
        exists = app_exists(client, target_name)
        rebuild = None
        if not exists or request.definition:
            snapshot = app_snapshot(repository, backup)
            options = request.rebuild_options(exists)
            rebuild = plan_rebuild(client, repository, snapshot, backup.backup_id, target_name, options).describe(
                done=False
            )
        if not exists:
            return RestorePreview(backup.backup_id, target_name, rebuild=rebuild)
        plan = plan_restore(
            client,
            repository,
            backup,
            target_name,
            request.volumes,
            request.databases,
            request.volume_map,
            runtime.read_secret,
        )
        comparer = Comparer(repository)
        trees = [(subpath, path, comparer.compare(plan.snapshot, subpath, path)) for subpath, path in plan.trees]
    return RestorePreview(
        backup.backup_id,
        target_name,
        trees,
        [(dump, database.container.name) for dump, database in plan.databases],
        [c.name for c in plan.target.containers if c.running] if request.stop_app else [],
        plan.notes,
        plan.inventories,
        rebuild,
    )
