"""`lifeboat catalog sync`: rebuild the catalog's view of each storage from its repository."""

from __future__ import annotations

import click

from controller.cli.context import CliContext
from controller.cli.text import OUTPUT_OPTION, FullHelpGroup, emit, table
from controller.errors import ResourceNotFound

pass_context = click.make_pass_decorator(CliContext)


@click.group("catalog", cls=FullHelpGroup)
def catalog() -> None:
    """The catalog of backups (a cache of the repositories)."""


@catalog.command("sync")
@click.option("--storage", "only", metavar="NAME", help="Only this BackupStorage (default: every one).")
@OUTPUT_OPTION
@pass_context
def sync(ctx: CliContext, only: str | None, output: str) -> None:
    """Add a row for every snapshot the catalog lacks (a new host, a lost catalog) and drop
    completed rows whose snapshot is gone (forgotten by another host)."""
    from controller.reconciler.catalog_sync import sync_catalog
    from controller.reconciler.storage_factory import passphrase_for_resource, storage_for_resource
    from controller.repository.repository import Repository
    from controller.resources.backup_storage import BackupStorage

    storages = [
        item.resource
        for item in ctx.store.load().of_kind("BackupStorage")
        if isinstance(item.resource, BackupStorage) and only in (None, item.name)
    ]
    if not storages:
        raise ResourceNotFound(f"no BackupStorage {only + ' ' if only else ''}in {ctx.resources_dir}")
    reports = []
    for storage in storages:
        repository = Repository.open(
            storage_for_resource(storage, ctx.environ), passphrase_for_resource(storage, ctx.environ)
        )
        reports.append(sync_catalog(ctx.catalog, repository, storage.metadata.name))
    rows = [
        {"storage": r.storage, "added": len(r.added), "removed": len(r.removed), "unchanged": r.unchanged}
        for r in reports
    ]
    emit(
        output, rows, table(["STORAGE", "ADDED", "REMOVED", "UNCHANGED"], [[str(v) for v in r.values()] for r in rows])
    )
