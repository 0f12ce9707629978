"""App verbs: `lifeboat apps`, `backup APP`, `restore BACKUP_ID`, `repair`.

Every verb that talks to Docker first repairs what a killed Lifeboat left behind: the
containers it had paused or stopped are started again, and only those."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from controller.cli.context import CliContext
from controller.cli.progress import byte_progress
from controller.cli.repo_commands import RepoTarget, restore_files
from controller.cli.text import OUTPUT_OPTION, emit, for_people, human_bytes, key_values, rfc3339, table
from controller.errors import BackupNotFound, InvalidConfig, ResourceNotFound

if TYPE_CHECKING:
    from controller.apps.docker_api import DockerClient
    from controller.apps.quiesce import Repaired
    from controller.catalog.models import Backup
    from controller.reconciler.restore_run import RestoreRequest
    from controller.reconciler.runtime import Repositories, RestoreStep, Runtime
    from controller.repository.archiver import Progress

pass_context = click.make_pass_decorator(CliContext)


def docker_client(ctx: CliContext) -> DockerClient:
    """The engine, after repairing what a killed Lifeboat left (see _repair_host)."""
    from controller.apps.docker_api import connect

    client = connect(ctx.environ.get("DOCKER_HOST"))
    notes, fixed = _repair_host(ctx, client, force=False)
    for note in notes:
        click.echo(f"repair: {note}", err=True)
    for entry in fixed:
        click.echo(
            f"repair: {entry.container_name} (left {entry.action} by a killed Lifeboat): {entry.outcome}", err=True
        )
    return client


def _repair_host(ctx: CliContext, client: DockerClient, force: bool) -> tuple[list[str], list[Repaired]]:
    """Finish the restores a dead Lifeboat process left half done (with the storages of the
    resources directory), then start what dead processes left paused or stopped (with
    `force`, also what live ones hold): the app never starts on torn data."""
    from controller.apps.quiesce import repair
    from controller.reconciler.drill_run import finish_dead_drills
    from controller.reconciler.restore_recovery import finish_dead_restores
    from controller.reconciler.runtime import StorageRepositories
    from controller.reconciler.storage_factory import storage_for_resource
    from controller.resources.backup_storage import BackupStorage

    repositories = StorageRepositories(ctx.environ, storage_factory=ctx.storage_factory or storage_for_resource)
    if ctx.resources_dir.exists():
        storages = [item.resource for item in ctx.store.load().of_kind("BackupStorage")]
        repositories.update([storage for storage in storages if isinstance(storage, BackupStorage)])
    runtime = command_runtime(ctx, client, repositories)
    notes = finish_dead_restores(runtime) + finish_dead_drills(runtime)
    return notes, repair(client, runtime.ledger, force=force)


def command_runtime(ctx: CliContext, client: DockerClient | None, repositories: Repositories) -> Runtime:
    """The runs' needs for one command: its repositories, this engine (None: host paths
    only), the configured limits."""
    from controller.reconciler.runtime import Runtime, no_docker
    from controller.resources.secrets import database_password_reader

    limits = ctx.config.limits
    return Runtime(
        ctx.catalog,
        repositories,
        docker=(lambda: client) if client is not None else no_docker,
        read_secret=database_password_reader(ctx.environ),
        transfers=limits.transfers,
        max_backup_bytes=int(limits.max_backup_size_gb * 1024**3) if limits.max_backup_size_gb else None,
    )


@click.command("apps")
@click.argument("name", required=False)
@OUTPUT_OPTION
@pass_context
def apps(ctx: CliContext, name: str | None, output: str) -> None:
    """List the Compose apps on this Docker host and what a backup would read."""
    from controller.apps.discovery import discover, list_app_names

    client = docker_client(ctx)
    names = [name] if name else list_app_names(client)
    found = [discover(client, n) for n in names]
    rows, data = [], []
    for app in found:
        running = sum(c.running for c in app.containers)
        mounts = [f"{c.service}:{b.destination}" for c in app.containers for b in c.binds if b.source.is_dir()]
        databases = [f"{d.service} ({d.source.engine})" for d in app.databases]
        volumes = [v.key for v in app.volumes()]
        rows.append(
            [
                app.name,
                f"{running}/{len(app.containers)}",
                ",".join(volumes) or "-",
                ",".join(mounts) or "-",
                ",".join(databases) or "-",
            ]
        )
        data.append(
            {
                "app": app.name,
                "containers": [{"name": c.name, "service": c.service, "state": c.state} for c in app.containers],
                "volumes": volumes,
                "mounts": mounts,
                "databases": [{"service": d.service, "engine": d.source.engine} for d in app.databases],
            }
        )
    emit(output, data, table(["APP", "RUNNING", "VOLUMES", "MOUNTS", "DATABASES"], rows) if rows else "no apps")


@click.command("backup")
@click.argument("app", required=False)
@click.option("--policy", "policy_name", metavar="NAME", help="Take the settings of this BackupPolicy.")
@click.option("--storage", "storage_name", metavar="NAME", help="BackupStorage to write to (default: the policy's).")
@click.option("--type", "backup_type", type=click.Choice(["full", "incremental", "differential"]))
@click.option("--consistency", type=click.Choice(["online", "pause", "stop"]))
@OUTPUT_OPTION
@pass_context
def backup(
    ctx: CliContext,
    app: str | None,
    policy_name: str | None,
    storage_name: str | None,
    backup_type: str | None,
    consistency: str | None,
    output: str,
) -> None:
    """Back up APP (a Compose project: its databases, volumes and bind mounts), or what
    --policy NAME backs up (a policy of host paths needs no APP)."""
    from controller.cli.render import item_rows
    from controller.reconciler.backup_run import BackupRequest, BackupRunner
    from controller.reconciler.runtime import Board, OpenedRepository
    from controller.resources.backup_policy import BackupType, Consistency

    if app is None and policy_name is None:
        raise click.UsageError("give APP, or --policy NAME (a policy of host paths needs no APP)")
    policy = _policy_for(ctx, app, policy_name, storage_name)
    request = BackupRequest.from_policy(policy) if policy else BackupRequest(app=app, storage=storage_name or "")
    request.app = app or request.app
    request.storage = storage_name or request.storage
    if not request.storage:
        raise click.UsageError(f"no BackupPolicy for app {app!r}: give --storage NAME (or --policy NAME)")
    if backup_type:
        request.backup_type = BackupType(backup_type)
    if consistency:
        request.consistency = Consistency(consistency)
    client = docker_client(ctx) if request.app else None
    target = RepoTarget(ctx, None, request.storage, None, None)
    resource = target.resource()
    quota = resource.spec.quota_bytes if resource else None
    runtime = command_runtime(ctx, client, OpenedRepository(target.open(), quota))
    with byte_progress(f"backup {request.subject}", None, for_people(output)) as display:

        def show(key: str, state: Progress) -> None:
            display.update(state.bytes_read, state.files, state.current)

        runtime.progress = Board(show)
        row = BackupRunner(runtime).run(request)
    items = ctx.catalog.items_of(row.backup_id)
    emit(
        output,
        {"backup": row.model_dump(mode="json"), "items": [i.model_dump(mode="json") for i in items]},
        f"backup {row.backup_id} completed: {row.files} files, {human_bytes(row.size_bytes)} "
        f"({human_bytes(row.added_bytes)} added)\n" + table(*item_rows(items)),
        names=[row.backup_id],
    )


def _policy_for(ctx: CliContext, app: str | None, name: str | None, storage: str | None) -> Any:
    """The policy whose settings a `backup APP` takes: --policy, else the app's policy (the
    one writing to --storage when the app has several)."""
    from controller.resources.backup_policy import BackupPolicy

    if name is None and not ctx.resources_dir.exists():
        return None
    policies = [r.resource for r in ctx.store.load().of_kind("BackupPolicy")]
    if name is not None:
        chosen = next((p for p in policies if p.metadata.name == name), None)
        if chosen is None:
            raise ResourceNotFound(f'BackupPolicy "{name}" not found in {ctx.resources_dir}')
        return chosen
    for_app = [p for p in policies if isinstance(p, BackupPolicy) and p.spec.app == app]
    if storage is not None and len(for_app) > 1:
        for_app = [p for p in for_app if p.spec.storage == storage]
    if len(for_app) > 1:
        names = ", ".join(p.metadata.name for p in for_app)
        raise InvalidConfig(f"several BackupPolicies back up app {app!r} ({names}); choose one with --policy")
    return for_app[0] if for_app else None


@click.command("restore")
@click.argument("backup_id", required=False)
@click.option("--policy", "policy_name", metavar="NAME", help="With --at: that policy's backup at a point in time.")
@click.option("--at", "point_in_time", metavar="RFC3339", help="The latest backup at or before this time.")
@click.option("--target-app", metavar="APP", help="Restore into this app (a clone) instead of the backed-up one.")
@click.option("--no-safety-backup", is_flag=True, help="Do not back up the target first (no rollback possible).")
@click.option("--volume", "volumes", multiple=True, metavar="KEY", help="Only this volume (repeatable).")
@click.option("--database", "databases", multiple=True, metavar="SERVICE", help="Only this database (repeatable).")
@click.option(
    "--volume-map",
    "volume_map",
    multiple=True,
    metavar="KEY=VOLUME",
    help="Write snapshot volume KEY into Docker volume VOLUME (repeatable).",
)
@click.option("--exact-databases", is_flag=True, help="Drop the databases the target holds that the backup did not.")
@click.option(
    "--definition",
    is_flag=True,
    help="Put back the app's project files and images too (undo an upgrade); a missing app is always recreated.",
)
@click.option("--project-dir", metavar="DIR", help="Write a recreated app's project folder here.")
@click.option("--force", is_flag=True, help="Write a recreated app's project folder over other content.")
@click.option("--keep-ports", is_flag=True, help="A clone (--target-app NEW) keeps the source's published ports.")
@click.option(
    "--target",
    "target_dir",
    type=click.Path(path_type=Path),
    help="Write the backup's files (or --path) into this directory instead; no app is touched.",
)
@click.option("--path", "subpath", default="", help="With --target: only this file or folder (e.g. volumes/uploads/x).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would change (files, dumps, containers) and change nothing. "
    "Exit 0: nothing would change; 1: something would; 2: the restore could not run.",
)
@OUTPUT_OPTION
@pass_context
def restore(
    ctx: CliContext,
    backup_id: str | None,
    policy_name: str | None,
    point_in_time: str | None,
    target_app: str | None,
    no_safety_backup: bool,
    volumes: tuple[str, ...],
    databases: tuple[str, ...],
    volume_map: tuple[str, ...],
    exact_databases: bool,
    definition: bool,
    project_dir: str | None,
    force: bool,
    keep_ports: bool,
    target_dir: Path | None,
    subpath: str,
    dry_run: bool,
    output: str,
) -> None:
    """Restore BACKUP_ID (or --policy NAME --at TIME): the app is stopped, its data made
    identical to the backup, and started; on failure it runs on its safety backup. An app
    this host lacks (or --target-app NEW, a clone) is first recreated from the backup. With
    --target DIR, the backup's files (any backup, of an app or of host paths) are written
    into DIR instead, and no app is touched."""
    from controller.reconciler.restore_run import RestoreRequest, RestoreRunner, resolve_backup
    from controller.reconciler.runtime import Board, OpenedRepository
    from controller.resources.restore import RestorePhase

    if bool(backup_id) == bool(policy_name and point_in_time):
        raise click.UsageError("give BACKUP_ID, or --policy NAME with --at RFC3339")
    request = RestoreRequest(
        backup_id,
        policy=policy_name,
        point_in_time=rfc3339(point_in_time) if point_in_time else None,
        target_app=target_app,
        safety_backup=not no_safety_backup,
        volumes=list(volumes) or None,
        volume_map=key_values(volume_map, "--volume-map", "KEY=VOLUME", value_required=True),
        exact_databases=exact_databases,
        databases=list(databases) or None,
        definition=definition,
        project_dir=project_dir,
        force=force,
        keep_ports=keep_ports,
    )
    if subpath and target_dir is None:
        raise click.UsageError("--path needs --target DIR: one file or folder is written into a directory")
    if dry_run:
        _preview(ctx, request, output)
    backup_row = resolve_backup(ctx.catalog, request, datetime.now(UTC))  # unknown: one line, nothing run
    if target_dir is not None:
        _restore_files(ctx, backup_row, target_dir, subpath, output)
        return
    client = docker_client(ctx)
    target = RepoTarget(ctx, None, backup_row.storage, None, None)
    runtime = command_runtime(ctx, client, OpenedRepository(target.open()))
    with byte_progress(f"restore {backup_row.backup_id}", None, for_people(output)) as display:

        def show(run_id: str, step: RestoreStep) -> None:
            display.update(step.bytes, step.files, step.phase)

        runtime.restores = Board(show)
        run = RestoreRunner(runtime).run(request)
    emit(output, run.model_dump(mode="json"), f"restore {run.id}: {run.phase}: {run.message}")
    if run.phase != RestorePhase.SUCCEEDED.value:
        sys.exit(1)


def _restore_files(ctx: CliContext, backup: Backup, target_dir: Path, subpath: str, output: str) -> None:
    if backup.snapshot_id is None:
        raise BackupNotFound(f"backup {backup.backup_id} is {backup.status.value}: it has no snapshot")
    target = RepoTarget(ctx, None, backup.storage, None, None)
    repository = target.open(lock="restore")
    restore_files(repository, repository.load_snapshot(backup.snapshot_id), target_dir, subpath, False, 2, output)


def _preview(ctx: CliContext, request: RestoreRequest, output: str) -> NoReturn:
    """The dry run: print the plan; exit 0 (nothing would change), 1 (something would) or 2."""
    from controller.errors import LifeboatError
    from controller.reconciler.restore_preview import preview_restore
    from controller.reconciler.restore_run import resolve_backup
    from controller.reconciler.runtime import OpenedRepository

    try:
        backup_row = resolve_backup(ctx.catalog, request, datetime.now(UTC))
        client = docker_client(ctx)
        repository = RepoTarget(ctx, None, backup_row.storage, None, None).open()
        preview = preview_restore(command_runtime(ctx, client, OpenedRepository(repository)), request)
    except LifeboatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    emit(output, preview.to_dict(), "\n".join(preview.lines()))
    sys.exit(1 if preview.would_change() else 0)


@click.command("repair")
@click.option("--force", is_flag=True, help="Also resume containers held by live Lifeboat processes.")
@pass_context
def repair(ctx: CliContext, force: bool) -> None:
    """Finish the restores a killed Lifeboat left half done (applied again, or rolled back to
    their safety backup), then start again the containers it left paused or stopped."""
    from controller.apps.docker_api import connect

    notes, fixed = _repair_host(ctx, connect(ctx.environ.get("DOCKER_HOST")), force)
    for note in notes:
        click.echo(note)
    for entry in fixed:
        click.echo(f"{entry.container_name}: {entry.outcome} (was {entry.action})")
    if not (notes or fixed):
        click.echo("nothing to repair")
    if any(entry.outcome.startswith("failed") for entry in fixed) or any("could not finish" in n for n in notes):
        sys.exit(1)
