"""Resource verbs: validate, apply, diff, get, describe, delete, crds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from controller.cli.context import CliContext
from controller.cli.render import (
    backup_rows,
    dump,
    event_rows,
    item_rows,
    resource_document,
    resource_rows,
    restore_run_row,
    run_document,
)
from controller.cli.text import OUTPUT_OPTION, for_people, rfc3339, table
from controller.errors import LifeboatError, ResourceNotFound
from controller.resources.crd import drifted_schema_files, write_schema_files
from controller.resources.kinds import kind_choices, resolve_kind
from controller.resources.loader import LoadResult, load_paths
from controller.resources.store import Action

if TYPE_CHECKING:
    from controller.catalog.models import Backup

_FILES = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="File or directory of resources (repeatable).",
)

pass_context = click.make_pass_decorator(CliContext)


def _echo_problems(result: LoadResult) -> None:
    for problem in result.problems:
        click.echo(str(problem), err=True)


def _load_valid(paths: tuple[Path, ...]) -> LoadResult:
    """Load input files; any problem aborts the command before anything is written."""
    result = load_paths(paths)
    if result.problems:
        _echo_problems(result)
        click.echo(f"error: {len(result.problems)} problem(s); nothing was changed", err=True)
        sys.exit(1)
    return result


def _kind_or_exit(text: str) -> str:
    kind = resolve_kind(text)
    if kind is None:
        raise click.UsageError(f"unknown kind {text!r}; expected one of {kind_choices()} or 'backups'")
    return kind


@click.command("apply")
@_FILES
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@pass_context
def apply(ctx: CliContext, paths: tuple[Path, ...], dry_run: bool) -> None:
    """Create or update resources in the resources directory (status is kept)."""
    incoming = _load_valid(paths)
    for change in ctx.store.apply(incoming.resources, dry_run=dry_run):
        suffix = " (dry run)" if dry_run else ""
        click.echo(f"{change.kind.lower()}/{change.name} {change.action.value}{suffix}")


@click.command("diff")
@_FILES
@pass_context
def diff(ctx: CliContext, paths: tuple[Path, ...]) -> None:
    """Show the spec changes `apply` would make. Exit 0 none, 1 changes, 2 or more on error."""
    try:
        result = load_paths(paths)
        if result.problems:
            _echo_problems(result)
            sys.exit(2)
        changes = ctx.store.diff(result.resources)
    except LifeboatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    changed = [c for c in changes if c.action != Action.UNCHANGED]
    for change in changed:
        click.echo(change.diff, nl=False)
    sys.exit(1 if changed else 0)


def _retention_outlook(ctx: CliContext, backups: list[Backup]) -> dict[str, str]:
    """What each listed backup's policy retention will do next (from the policy's resource)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from controller.catalog.catalog import BackupFilter
    from controller.catalog.models import BackupStatus
    from controller.reconciler.retention import Dated, retention_outlook
    from controller.resources.backup_policy import BackupPolicy

    names = {b.policy for b in backups if b.policy}
    if not names or not ctx.resources_dir.exists():
        return {}
    outlook: dict[str, str] = {}
    for loaded in ctx.store.load().of_kind("BackupPolicy"):
        policy = loaded.resource
        if not isinstance(policy, BackupPolicy) or policy.metadata.name not in names:
            continue
        where = BackupFilter(policy=policy.metadata.name, status=BackupStatus.COMPLETED, limit=100_000)
        completed = [Dated(b.backup_id, b.created_at) for b in ctx.catalog.list_backups(where)]
        zone = policy.spec.schedule.zone() if policy.spec.schedule else ZoneInfo("UTC")
        outlook.update(retention_outlook(completed, policy.spec.retention, datetime.now(UTC), zone))
    return outlook


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@OUTPUT_OPTION
@click.option("--app", help="backups: only this app.")
@click.option("--policy", help="backups: only this policy.")
@click.option("--storage", help="backups: only those in this BackupStorage.")
@click.option(
    "--status", type=click.Choice(["pending", "in_progress", "completed", "failed"]), help="backups: only these."
)
@click.option("--since", metavar="RFC3339", help="backups: only those taken at or after this time.")
@click.option("--limit", default=50, show_default=True, help="backups: at most this many.")
@pass_context
def get(
    ctx: CliContext,
    kind: str,
    name: str | None,
    output: str,
    app: str | None,
    policy: str | None,
    storage: str | None,
    status: str | None,
    since: str | None,
    limit: int,
) -> None:
    """List resources of a KIND (storages, policies, restores) or catalog backups (a safety
    backup, taken by a restore before it changed anything, is marked "(safety)")."""
    if kind.lower() in {"backup", "backups"}:
        from controller.catalog.catalog import BackupFilter  # see CliContext.catalog
        from controller.catalog.models import BackupStatus

        where = BackupFilter(
            app_id=app,
            policy=policy,
            storage=storage,
            status=BackupStatus(status) if status else None,
            created_after=rfc3339(since) if since else None,
            limit=limit,
        )
        backups = ctx.catalog.list_backups(where)
        if name is not None:
            backups = [ctx.catalog.get_backup(name)]
        outlook = _retention_outlook(ctx, backups)
        if for_people(output):
            click.echo(table(*backup_rows(backups, outlook, wide=output == "wide")))
        elif output == "name":
            click.echo("\n".join(b.backup_id for b in backups))
        else:
            rows = [{**b.model_dump(mode="json"), "retention": outlook.get(b.backup_id)} for b in backups]
            click.echo(dump(rows, output))
        return
    canonical = _kind_or_exit(kind)
    result = ctx.store.load()
    _echo_problems(LoadResult(problems=[p for p in result.problems if p.kind in (None, canonical)]))
    found = [r for r in result.of_kind(canonical) if name is None or r.name == name]
    # Restores the CLI ran have no resource: their runs are listed with the Restore resources.
    runs = [r for r in ctx.catalog.standalone_restore_runs() if name in (None, r.id)] if canonical == "Restore" else []
    if name is not None and not found and not runs:
        raise ResourceNotFound(f'{canonical} "{name}" not found in {ctx.resources_dir}')
    if for_people(output):
        headers, listed = resource_rows(canonical, found)
        click.echo(table(headers, listed + [restore_run_row(run) for run in runs]))
    elif output == "name":
        click.echo("\n".join([r.name for r in found] + [run.id for run in runs]))
    else:
        documents = [resource_document(r) for r in found] + [run_document(run) for run in runs]
        click.echo(dump(documents[0] if name is not None else documents, output))


@click.command("describe")
@click.argument("kind")
@click.argument("name")
@OUTPUT_OPTION
@pass_context
def describe(ctx: CliContext, kind: str, name: str, output: str) -> None:
    """Show one resource (source, spec, status, recent events) or one backup (its items
    with files, bytes, tables and rows, its warnings and its app's or policy's events)."""
    if kind.lower() in {"backup", "backups"}:
        _describe_backup(ctx, name, output)
        return
    canonical = _kind_or_exit(kind)
    loaded = ctx.store.load().get(canonical, name)
    run = ctx.catalog.restore_run(name) if loaded is None and canonical == "Restore" else None
    if run is not None:  # a restore the CLI ran: its run is the object
        events = [e for e in ctx.catalog.events_for("App", run.target_app) if run.id in e.message]
        document = {**run_document(run), "events": [e.model_dump(mode="json", exclude={"id"}) for e in events]}
        click.echo(run.id if output == "name" else dump(document, "json" if output == "json" else "yaml"))
        return
    if loaded is None:
        raise ResourceNotFound(f'{canonical} "{name}" not found in {ctx.resources_dir}')
    events = ctx.catalog.events_for(canonical, name)
    if output == "name":
        click.echo(loaded.name)
        return
    if output == "json" or output == "yaml":
        document = resource_document(loaded)
        document["events"] = [e.model_dump(mode="json", exclude={"id"}) for e in events]
        click.echo(dump(document, output))
        return
    document = resource_document(loaded)
    click.echo(f"Source:  {loaded.path}:{loaded.line}")
    click.echo(dump({"metadata": document["metadata"], "spec": document["spec"]}, "yaml"))
    click.echo(dump({"status": document.get("status", {})}, "yaml"))
    click.echo("events:" if events else "events: none recorded")
    if events:
        click.echo(table(*event_rows(events)))


def _describe_backup(ctx: CliContext, backup_id: str, output: str) -> None:
    from controller.catalog.models import ItemKind  # see CliContext.catalog

    row = ctx.catalog.get_backup(backup_id)
    items = ctx.catalog.items_of(backup_id)
    events = (
        ctx.catalog.events_for("BackupPolicy", row.policy) if row.policy else ctx.catalog.events_for("App", row.app_id)
    )
    mentioned = [e for e in events if backup_id in e.message]
    document = {
        "backup": row.model_dump(mode="json"),
        "retention": _retention_outlook(ctx, [row]).get(backup_id) or _unowned(row),
        "app": _recorded_app(ctx, row) if any(i.kind == ItemKind.DEFINITION for i in items) else None,
        "items": [i.model_dump(mode="json", exclude={"id", "backup_id"}) for i in items],
        "warnings": row.warnings.split("; ") if row.warnings else [],
        "events": [e.model_dump(mode="json", exclude={"id"}) for e in mentioned],
    }
    if output == "name":
        click.echo(row.backup_id)
        return
    if output in ("json", "yaml"):
        click.echo(dump(document, output))
        return
    shown = ("backup", "retention", "app", "warnings")
    click.echo(dump({key: document[key] for key in shown if document[key] is not None}, "yaml"))
    click.echo(table(*item_rows(items)))
    click.echo("events:" if mentioned else "events: none recorded")
    if mentioned:
        click.echo(table(*event_rows(mentioned)))


def _unowned(row: Backup) -> str:
    """Why no retention applies to a backup."""
    if row.policy is None:
        return "kept until deleted (no policy: retention never removes it)"
    return f"kept (policy {row.policy} is not in the resources, or the backup is not completed)"


def _recorded_app(ctx: CliContext, row: Backup) -> dict[str, Any]:
    """The app the backup recorded (project, folder, services, images; never its settings),
    read from the repository."""
    from controller.cli.repo_commands import RepoTarget
    from controller.reconciler.snapshot_layout import read_definition

    try:
        repository = RepoTarget(ctx, None, row.storage, None, None).open()
        definition = read_definition(repository, repository.load_snapshot(row.snapshot_id or ""))
    except LifeboatError as err:
        return {"unreadable": str(err)}
    return definition.summary() if definition is not None else {}


@click.command("delete")
@click.argument("kind", required=False)
@click.argument("name", required=False)
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Delete the resources named in these files.",
)
@click.option("--force", is_flag=True, help="Delete a storage even though policies still use it.")
@pass_context
def delete(ctx: CliContext, kind: str | None, name: str | None, paths: tuple[Path, ...], force: bool) -> None:
    """Delete resources by KIND NAME or by -f FILE (their backups are kept). A storage that
    policies still use is refused unless --force; with -f, policies go before storages."""
    if paths and (kind or name):
        raise click.UsageError("give either KIND NAME or -f FILE, not both")
    if paths:
        targets = [(r.kind, r.name) for r in _load_valid(paths).resources]
    elif kind and name:
        targets = [(_kind_or_exit(kind), name)]
    else:
        raise click.UsageError("give KIND NAME or -f FILE")
    for target_kind, target_name in sorted(targets, key=lambda t: t[0] == "BackupStorage"):
        change = ctx.store.delete(target_kind, target_name, force=force)
        click.echo(f"{change.kind.lower()}/{change.name} {change.action.value}")


@click.command("crds")
@click.option("--out", type=click.Path(path_type=Path), default=Path("crds"), show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 if the files differ from the models; write nothing.")
def crds(out: Path, check: bool) -> None:
    """Generate the kinds' JSON Schemas (one file per kind) from the models."""
    if check:
        drifted = drifted_schema_files(out)
        if drifted:
            click.echo(f"error: out of date: {', '.join(drifted)}; run `lifeboat crds --out {out}`", err=True)
            sys.exit(1)
        click.echo("schemas up to date")
        return
    for path in write_schema_files(out):
        click.echo(f"wrote {path}")


@click.command("validate")
@_FILES
def validate(paths: tuple[Path, ...]) -> None:
    """Check resource files; list every problem with file:line and field. Exit 1 if any."""
    result = load_paths(paths)
    _echo_problems(result)
    if result.problems:
        click.echo(f"{len(result.problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{len(result.resources)} resource(s) valid")
