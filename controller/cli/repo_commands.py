"""`lifeboat repo …`: the repository verbs, on a storage given by name or by location.

The passphrase comes from --passphrase-file, LIFEBOAT_PASSPHRASE, the older
BACKUP_ENCRYPTION_KEY, or the BackupStorage's secret reference; --recovery-kit opens the
repository with a kit instead.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from controller.cli.context import CliContext
from controller.cli.progress import byte_progress, scan_total
from controller.cli.text import OUTPUT_OPTION, FullHelpGroup, emit, for_people, human_bytes, key_values, table
from controller.errors import BackupNotFound, InvalidConfig, LifeboatError, ResourceNotFound
from controller.host import host_name
from controller.repository.archiver import Archiver, DirectorySource, Progress
from controller.repository.checker import Checker
from controller.repository.crypto import MasterKey
from controller.repository.exporter import export_tar
from controller.repository.keys import list_keys, master_key_from_kit, recovery_kit, remove_key, write_key_file
from controller.repository.listing import Entry, Finder, list_entries
from controller.repository.locks import remove_locks
from controller.repository.pruner import Pruner
from controller.repository.records import Node, NodeType, Snapshot
from controller.repository.repository import Repository, SnapshotEntry
from controller.repository.restorer import RestoreProgress, Restorer, find_node
from controller.storage.base import Storage
from controller.storage.location import storage_for_location

if TYPE_CHECKING:
    from controller.resources.backup_storage import BackupStorage

pass_context = click.make_pass_decorator(CliContext)


class RepoTarget:
    """Where the repository is and how to unlock it, from the group's options."""

    def __init__(
        self,
        ctx: CliContext,
        repo: str | None,
        storage_name: str | None,
        passphrase_file: Path | None,
        kit: Path | None,
    ) -> None:
        self.ctx, self.repo, self.storage_name = ctx, repo, storage_name
        self.passphrase_file, self.kit = passphrase_file, kit
        self.lock_wait = 0.0
        self.new_repository = False  # init: a prompted passphrase is asked twice
        self.transfers = 2
        self.held = contextlib.ExitStack()  # leases held until the command ends (released on errors too)
        self._resource: BackupStorage | None = None

    def _check_where(self) -> None:
        """Checked when the repository is first needed, so that every verb's --help works
        without one, and the options may come before or after the verb."""
        if bool(self.repo) == bool(self.storage_name):
            raise click.UsageError("give exactly one of --repo LOCATION or --storage NAME")

    def resource(self) -> BackupStorage | None:
        self._check_where()
        if self.storage_name is None:
            return None
        if self._resource is None:
            loaded = self.ctx.store.load().get("BackupStorage", self.storage_name)
            if loaded is None:
                raise ResourceNotFound(f'BackupStorage "{self.storage_name}" not found in {self.ctx.resources_dir}')
            from controller.resources.backup_storage import BackupStorage

            assert isinstance(loaded.resource, BackupStorage)
            self._resource = loaded.resource
        return self._resource

    def storage(self) -> Storage:
        resource = self.resource()
        if resource is None:
            return storage_for_location(self.repo or "", self.ctx.environ)
        from controller.reconciler.storage_factory import storage_for_resource

        return (self.ctx.storage_factory or storage_for_resource)(resource, self.ctx.environ)

    def passphrase(self) -> bytes:
        """--passphrase-file; else with --storage the storage's declared reference (an
        environment passphrase that differs is refused, never silently preferred); else
        LIFEBOAT_PASSPHRASE or BACKUP_ENCRYPTION_KEY."""
        if self.passphrase_file is not None:
            return self.passphrase_file.read_bytes().rstrip(b"\r\n")
        from_env = next(
            (
                (name, self.ctx.environ[name])
                for name in ("LIFEBOAT_PASSPHRASE", "BACKUP_ENCRYPTION_KEY")
                if self.ctx.environ.get(name)
            ),
            None,
        )
        resource = self.resource()
        if resource is not None:
            from controller.reconciler.storage_factory import passphrase_for_resource

            declared = passphrase_for_resource(resource, self.ctx.environ)
            if from_env is not None and from_env[1].encode() != declared:
                reference = resource.spec.encryption.passphrase
                where = f"env {reference.env}" if reference.env else f"file {reference.file}"
                raise InvalidConfig(
                    f'{from_env[0]} differs from the passphrase BackupStorage "{resource.metadata.name}" declares '
                    f"(spec.encryption.passphrase: {where}), which --storage uses: unset {from_env[0]}, "
                    "or correct the storage's reference"
                )
            return declared
        if from_env is not None:
            return from_env[1].encode()
        if sys.stdin.isatty():
            return _prompt_passphrase("Repository passphrase", confirm=self.new_repository)
        raise InvalidConfig(
            "no passphrase: set LIFEBOAT_PASSPHRASE (or BACKUP_ENCRYPTION_KEY), "
            "or give --passphrase-file or --recovery-kit"
        )

    def snapshot_id(self, repository: Repository, given: str, path: str = "", narrow: Narrowing | None = None) -> str:
        """The snapshot `given` names: `latest` (the newest that matches --app, --policy and
        --tag and holds `path`), a backup id (through the catalog), or a snapshot id prefix."""
        if given == "latest":
            wanted = narrow.tags() if narrow is not None else {}
            for entry in reversed(repository.snapshots()):
                if all(entry.snapshot.tags.get(k) == v for k, v in wanted.items()) and _holds(repository, entry, path):
                    return entry.id
            what = ", ".join([f"{k}={v}" for k, v in wanted.items()] + ([f"path {path}"] if path else []))
            raise BackupNotFound(f"no snapshot{f' with {what}' if what else ''} in {repository.storage.describe()}")
        if "-" in given:  # backup ids are SUBJECT-DATE-TIME-HEX; snapshot ids are hex
            row = self.ctx.catalog.get_backup(given)
            if row.snapshot_id is None:
                raise BackupNotFound(f"backup {given} is {row.status.value}: it has no snapshot")
            return row.snapshot_id
        return repository.resolve_snapshot(given)

    def open(self, lock: str | None = None, exclusive: bool = False) -> Repository:
        """Open the repository; with `lock`, hold a lease named so until the command ends."""
        storage = self.storage()
        if self.kit is not None:
            master, _ = master_key_from_kit(self.kit.read_text())
            repository = Repository.open_with_master_key(storage, master)
        else:
            repository = Repository.open(storage, self.passphrase())
        if lock is not None:
            self.held.enter_context(repository.locked(exclusive, lock, _now, timedelta(seconds=self.lock_wait)))
        return repository


@dataclass(frozen=True)
class Narrowing:
    """--app, --policy and --tag: which snapshots `latest` chooses from."""

    app: str | None = None
    policy: str | None = None
    tag: tuple[str, ...] = ()

    def tags(self) -> dict[str, str]:
        wanted = key_values(self.tag, "--tag", "KEY=VALUE")
        return {**wanted, **({"app": self.app} if self.app else {}), **({"policy": self.policy} if self.policy else {})}


def _holds(repository: Repository, entry: SnapshotEntry, path: str) -> bool:
    try:
        find_node(repository, entry.snapshot, path)
    except BackupNotFound:
        return False
    return True


def narrowing(command: Callable[..., None]) -> Callable[..., None]:
    """--app, --policy, --tag: narrow `latest`."""
    for option in (
        click.option("--tag", "narrow_tags", multiple=True, metavar="KEY=VALUE", help="latest: with this tag."),
        click.option("--policy", "narrow_policy", metavar="NAME", help="latest: of this policy."),
        click.option("--app", "narrow_app", metavar="APP", help="latest: of this app."),
    ):
        command = option(command)
    return command


def _now() -> datetime:
    return datetime.now(UTC)


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_STORAGE_HELP = "A BackupStorage resource by name (its location and passphrase reference)."
_PASSPHRASE_HELP = "Read the passphrase from this file (its first line)."
_LOCK_WAIT_HELP = "Wait this long for a conflicting lock (a running backup or prune) to go away."
_TRANSFERS_HELP = "Uploads (backup) and downloads (restore) in flight; raise it for distant S3."
_KIT_HELP = "Open with a recovery kit instead of a passphrase."


def _set_on_target(attribute: str) -> Callable[[click.Context, click.Parameter, object], None]:
    def store(click_ctx: click.Context, _param: click.Parameter, value: object) -> None:
        if value is not None:
            target = click_ctx.find_object(RepoTarget)
            assert target is not None
            setattr(target, attribute, value)

    return store


def repository_options() -> list[click.Option]:
    """The group's repository options, accepted after the verb too (`repo check --repo DIR`)."""
    options = [
        (["--repo"], {"metavar": "LOCATION", "help": "Repository location."}, "repo"),
        (["--storage"], {"metavar": "NAME", "help": _STORAGE_HELP}, "storage_name"),
        (["--passphrase-file"], {"type": _FILE, "help": _PASSPHRASE_HELP}, "passphrase_file"),
        (["--lock-wait"], {"type": float, "metavar": "SECONDS", "help": _LOCK_WAIT_HELP}, "lock_wait"),
        (["--transfers"], {"type": click.IntRange(1, 64), "help": _TRANSFERS_HELP}, "transfers"),
        (["--recovery-kit"], {"type": _FILE, "help": _KIT_HELP}, "kit"),
    ]
    return [
        click.Option(names, expose_value=False, callback=_set_on_target(attribute), **settings)  # type: ignore[arg-type]
        for names, settings, attribute in options
    ]


@click.group("repo", cls=FullHelpGroup)
@click.option(
    "--repo",
    "repo",
    metavar="LOCATION",
    envvar="LIFEBOAT_REPOSITORY",
    help="Repository location: a directory or s3://BUCKET/PREFIX [env: LIFEBOAT_REPOSITORY].",
)
@click.option("--storage", "storage_name", metavar="NAME", help=_STORAGE_HELP)
@click.option("--passphrase-file", type=_FILE, help=_PASSPHRASE_HELP)
@click.option("--lock-wait", default=0.0, show_default=True, metavar="SECONDS", help=_LOCK_WAIT_HELP)
@click.option(
    "--transfers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="LIFEBOAT_TRANSFERS",
    help=_TRANSFERS_HELP + " [env: LIFEBOAT_TRANSFERS]",
)
@click.option("--recovery-kit", "kit", type=_FILE, help=_KIT_HELP)
@click.pass_context
def repo(
    click_ctx: click.Context,
    repo: str | None,
    storage_name: str | None,
    passphrase_file: Path | None,
    lock_wait: float,
    transfers: int,
    kit: Path | None,
) -> None:
    """The repository: init, backup, snapshots, ls, find, restore, check, forget, prune, export, keys, unlock."""
    ctx = click_ctx.find_object(CliContext)
    assert ctx is not None
    target = RepoTarget(ctx, repo, storage_name, passphrase_file, kit)
    target.lock_wait = lock_wait
    target.transfers = transfers
    click_ctx.obj = target
    click_ctx.call_on_close(target.held.close)


pass_target = click.make_pass_decorator(RepoTarget)


@repo.command("init")
@OUTPUT_OPTION
@pass_target
def init(target: RepoTarget, output: str) -> None:
    """Create an empty repository sealed with the passphrase (asked twice on a terminal)."""
    target.new_repository = True
    repository = Repository.init(target.storage(), target.passphrase(), _now(), host_name(), getpass.getuser())
    emit(
        output,
        {"id": repository.config.id, "location": repository.storage.describe()},
        f"created repository {repository.config.id[:8]} at {repository.storage.describe()}",
    )


@repo.command("backup")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the snapshot (repeatable).")
@click.option(
    "--type", "backup_type", type=click.Choice(["full", "incremental"]), default="incremental", show_default=True
)
@click.option("--compression", type=click.Choice(["off", "auto", "max"]), default="auto", show_default=True)
@OUTPUT_OPTION
@pass_target
def backup(
    target: RepoTarget, paths: tuple[Path, ...], tags: tuple[str, ...], backup_type: str, compression: str, output: str
) -> None:
    """Back up directories: one PATH becomes the snapshot's root, several are kept by name."""
    repository = target.open(lock="backup")
    if len(paths) == 1:
        sources = [DirectorySource("", paths[0].resolve())]
    else:
        names = [p.resolve().name for p in paths]
        if len(set(names)) != len(names):
            raise click.UsageError("several PATHs with the same name; back them up separately")
        sources = [DirectorySource(p.resolve().name, p.resolve()) for p in paths]
    tag_map = {**key_values(tags, "--tag", "KEY=VALUE"), "type": backup_type}
    snapshot_paths = [s.name for s in sources]
    parent = (
        repository.latest_snapshot({"app": tag_map.get("app")}, snapshot_paths)
        if backup_type == "incremental"
        else None
    )
    with byte_progress("backup", None, for_people(output)) as display:
        if display.shown:  # the scan only feeds the ETA; without a terminal it is wasted work
            scan_total([source.path for source in sources], display)

        def progress(state: Progress) -> None:
            display.update(state.bytes_read, state.files, state.current)

        result = Archiver(
            repository, parent=parent, compression=compression, uploads=target.transfers, progress=progress
        ).run(sources, tag_map, host_name(), _now().isoformat())
    summary = result.snapshot.summary
    emit(
        output,
        {"id": result.id, "summary": asdict(summary), "problems": result.problems, "parent": result.snapshot.parent},
        f"snapshot {result.id[:8]} saved: {summary.files} files, {human_bytes(summary.bytes)}, "
        f"{human_bytes(summary.bytes_added)} added in {summary.duration_seconds:.1f}s",
    )
    if result.problems:
        for problem in result.problems:
            click.echo(f"warning: {problem}", err=True)
        click.echo(f"error: snapshot {result.id[:8]} is incomplete: {len(result.problems)} problem(s)", err=True)
        sys.exit(1)


@repo.command("snapshots")
@OUTPUT_OPTION
@pass_target
def snapshots(target: RepoTarget, output: str) -> None:
    """List snapshots, oldest first."""
    entries = target.open().snapshots()
    rows = [
        [
            e.id[:8],
            e.snapshot.time[:19],
            e.snapshot.hostname,
            ",".join(f"{k}={v}" for k, v in sorted(e.snapshot.tags.items())),
            human_bytes(e.snapshot.summary.bytes),
        ]
        for e in entries
    ]
    emit(
        output,
        [{"id": e.id, **asdict(e.snapshot)} for e in entries],
        table(["ID", "TIME", "HOST", "TAGS", "SIZE"], rows),
    )


@repo.command("ls")
@click.argument("snapshot_id", metavar="SNAPSHOT")
@click.argument("path", default="")
@narrowing
@OUTPUT_OPTION
@pass_target
def ls(
    target: RepoTarget,
    snapshot_id: str,
    path: str,
    narrow_app: str | None,
    narrow_policy: str | None,
    narrow_tags: tuple[str, ...],
    output: str,
) -> None:
    """List what a snapshot, a backup (by id) or `latest` holds at and below PATH."""
    repository = target.open()
    narrow = Narrowing(narrow_app, narrow_policy, narrow_tags)
    chosen = target.snapshot_id(repository, snapshot_id, path, narrow)
    entry = SnapshotEntry(chosen, repository.load_snapshot(chosen))
    entries = list(list_entries(repository, entry, path))
    emit(
        output,
        [_entry_data(e) for e in entries],
        table(["TYPE", "MODE", "SIZE", "MODIFIED (UTC)", "PATH"], [_entry_row(e) for e in entries]),
        names=[e.path for e in entries],
    )


@repo.command("find")
@click.argument("pattern")
@narrowing
@OUTPUT_OPTION
@pass_target
def find(
    target: RepoTarget,
    pattern: str,
    narrow_app: str | None,
    narrow_policy: str | None,
    narrow_tags: tuple[str, ...],
    output: str,
) -> None:
    """Every snapshot (newest first; --app, --policy, --tag narrow them) holding a file or
    folder whose name matches PATTERN, a glob ("*.sql", "wp-config.php")."""
    repository = target.open()
    wanted = Narrowing(narrow_app, narrow_policy, narrow_tags).tags()
    finder = Finder(repository, pattern)
    found = [
        (snapshot, match)
        for snapshot in reversed(repository.snapshots())
        if all(snapshot.snapshot.tags.get(k) == v for k, v in wanted.items())
        for match in finder.in_snapshot(snapshot)
    ]
    emit(
        output,
        [{"snapshot": s.id, "backup": s.snapshot.tags.get("backup"), **_entry_data(m)} for s, m in found],
        table(
            ["BACKUP / SNAPSHOT", "TIME", "SIZE", "PATH"],
            [
                [s.snapshot.tags.get("backup", s.id[:8]), s.snapshot.time[:19], human_bytes(m.node.size), m.path]
                for s, m in found
            ],
        ),
        names=[m.path for _, m in found],
    )


def _entry_data(entry: Entry) -> dict[str, object]:
    node = entry.node
    return {
        "path": entry.path,
        "type": node.type.value,
        "mode": f"{node.mode:o}",
        "size": node.size,
        "mtime": _time(node),
    }


def _entry_row(entry: Entry) -> list[str]:
    node = entry.node
    size = human_bytes(node.size) if node.type == NodeType.FILE else "-"
    return [node.type.value, f"{node.mode:04o}", size, _time(node)[:16].replace("T", " "), entry.path]


def _time(node: Node) -> str:
    return datetime.fromtimestamp(node.mtime_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


@repo.command("restore")
@click.argument("snapshot_id", metavar="SNAPSHOT")
@click.option(
    "--target", "target_dir", required=True, type=click.Path(path_type=Path), help="Directory to restore into."
)
@click.option("--path", "subpath", default="", help="Only this path inside the snapshot.")
@click.option("--delete", is_flag=True, help="Remove files in the target that the snapshot does not have.")
@narrowing
@OUTPUT_OPTION
@pass_target
def restore(
    target: RepoTarget,
    snapshot_id: str,
    target_dir: Path,
    subpath: str,
    delete: bool,
    narrow_app: str | None,
    narrow_policy: str | None,
    narrow_tags: tuple[str, ...],
    output: str,
) -> None:
    """Restore a snapshot, a backup (by id) or `latest` (or a sub-path of it) into a directory."""
    repository = target.open(lock="restore")
    narrow = Narrowing(narrow_app, narrow_policy, narrow_tags)
    snapshot = repository.load_snapshot(target.snapshot_id(repository, snapshot_id, subpath, narrow))
    restore_files(repository, snapshot, target_dir, subpath, delete, target.transfers, output)


def restore_files(
    repository: Repository,
    snapshot: Snapshot,
    target_dir: Path,
    subpath: str,
    delete: bool,
    transfers: int,
    output: str,
) -> None:
    """A snapshot's files (or one path of it) written into a directory; no app is touched."""
    with byte_progress("restore", snapshot.summary.bytes, for_people(output)) as display:

        def progress(state: RestoreProgress) -> None:
            display.update(state.bytes, state.files)

        result = Restorer(repository, workers=max(4, transfers), progress=progress).restore(
            snapshot, target_dir, subpath, delete
        )
    emit(output, asdict(result), f"restored {result.files} files, {human_bytes(result.bytes)} to {target_dir}")
    for problem in result.problems:
        click.echo(f"warning: {problem}", err=True)
    if result.problems:
        sys.exit(1)


@repo.command("check")
@click.option(
    "--read-data",
    "read_data",
    is_flag=False,
    flag_value="100",
    default=None,
    metavar="[PERCENT]",
    help="Also decrypt and verify blobs: all, or a random PERCENT of packs.",
)
@OUTPUT_OPTION
@pass_target
def check(target: RepoTarget, read_data: str | None, output: str) -> None:
    """Verify the structure, and with --read-data the data. Exit 1 on any damage."""
    try:
        percent = float(read_data.rstrip("%")) if read_data else 0.0
    except ValueError:
        raise click.UsageError(f"--read-data expects a percentage, got {read_data!r}") from None
    report = Checker(target.open(lock="check")).check(percent)
    lines = [
        f"{report.snapshots} snapshots, {report.packs} packs; read {report.packs_read} packs, {report.blobs_read} blobs"
    ]
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"damage: {d.describe()}" for d in report.damage]
    lines.append("no damage found" if report.ok else f"{len(report.damage)} damaged object(s)")
    emit(
        output,
        {
            "ok": report.ok,
            "snapshots": report.snapshots,
            "packs_read": report.packs_read,
            "damage": [d.describe() for d in report.damage],
            "notes": report.notes,
        },
        "\n".join(lines),
    )
    if not report.ok:
        sys.exit(1)


@repo.command("forget")
@click.argument("snapshot_ids", nargs=-1, required=True, metavar="SNAPSHOT...")
@pass_target
def forget(target: RepoTarget, snapshot_ids: tuple[str, ...]) -> None:
    """Delete snapshots (their data goes at the next prune)."""
    repository = target.open(lock="forget", exclusive=True)
    full_ids = [target.snapshot_id(repository, i) for i in snapshot_ids]
    for full in full_ids:
        repository.forget(full)
        click.echo(f"forgot snapshot {full[:8]}")


@repo.command("prune")
@click.option("--dry-run", is_flag=True)
@click.option(
    "--grace-minutes",
    default=60,
    show_default=True,
    help="Keep unindexed or newly indexed data younger than this (running backups own it).",
)
@OUTPUT_OPTION
@pass_target
def prune(target: RepoTarget, dry_run: bool, grace_minutes: int, output: str) -> None:
    """Delete data no snapshot references; repack packs that are mostly garbage."""
    report = Pruner(target.open(lock="prune", exclusive=True), _now(), timedelta(minutes=grace_minutes)).prune(
        dry_run=dry_run
    )
    verb = "would free" if dry_run else "freed"
    note = report.grace_note()
    emit(
        output,
        {**asdict(report), "note": note},
        f"{verb} {human_bytes(report.bytes_freed)}: {report.packs_deleted} packs deleted, "
        f"{report.packs_repacked} repacked, {report.unindexed_deleted} unindexed removed, "
        f"{report.incomplete_writes_removed} abandoned uploads removed" + (f"\n{note}" if note else ""),
    )


@repo.command("export")
@click.argument("snapshot_id", metavar="SNAPSHOT")
@click.option("--path", "subpath", default="", help="Only this path inside the snapshot.")
@click.option(
    "-f",
    "--file",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of standard output.",
)
@narrowing
@pass_target
def export(
    target: RepoTarget,
    snapshot_id: str,
    subpath: str,
    out_file: Path | None,
    narrow_app: str | None,
    narrow_policy: str | None,
    narrow_tags: tuple[str, ...],
) -> None:
    """Write a snapshot, a backup (by id) or `latest` as a POSIX tar stream."""
    repository = target.open(lock="export")
    narrow = Narrowing(narrow_app, narrow_policy, narrow_tags)
    snapshot = repository.load_snapshot(target.snapshot_id(repository, snapshot_id, subpath, narrow))
    if out_file is None:
        if sys.stdout.isatty():
            raise click.UsageError("refusing to write a tar stream to a terminal; use -f FILE or a pipe")
        export_tar(repository, snapshot, sys.stdout.buffer, subpath)
        sys.stdout.buffer.flush()
        return
    partial = out_file.with_name(f".{out_file.name}.partial")
    with partial.open("wb") as handle:
        export_tar(repository, snapshot, handle, subpath)
    partial.replace(out_file)  # no half-written export is ever visible under its name
    click.echo(f"wrote {out_file}", err=True)


@repo.command("unlock")
@click.option("--force", is_flag=True, help="Also remove locks that are not stale (only if their holders are gone).")
@pass_target
def unlock(target: RepoTarget, force: bool) -> None:
    """Remove stale locks left by processes that died (all locks with --force)."""
    repository = target.open()
    removed = remove_locks(repository.storage, repository.master, _now(), force)
    for lock in removed:
        click.echo(f"removed {lock.describe()}")
    if not removed:
        click.echo("no stale locks")


@repo.group("key", cls=FullHelpGroup)
def key() -> None:
    """Key files: list, add, remove, passwd, export (a recovery kit), import."""


def _new_passphrase(environ: dict[str, str], file: Path | None) -> bytes:
    if file is not None:
        return file.read_bytes().rstrip(b"\r\n")
    value = environ.get("LIFEBOAT_NEW_PASSPHRASE", "")
    if not value and sys.stdin.isatty():
        return _prompt_passphrase("New passphrase", confirm=True)
    if not value:
        raise InvalidConfig("no new passphrase: set LIFEBOAT_NEW_PASSPHRASE or give --new-passphrase-file")
    return value.encode()


def _prompt_passphrase(label: str, confirm: bool) -> bytes:
    """Asked on the terminal, never echoed; twice when it seals something new."""
    value: str = click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
    if not value:
        raise InvalidConfig("an empty passphrase is not accepted")
    return value.encode()


def _add_key(storage: Storage, master: MasterKey, target: RepoTarget, new_passphrase_file: Path | None) -> str:
    """A key file for the new passphrase (from the file or LIFEBOAT_NEW_PASSPHRASE); its id."""
    passphrase = _new_passphrase(target.ctx.environ, new_passphrase_file)
    return write_key_file(storage, master, passphrase, _now(), host_name(), getpass.getuser())


_NEW = click.option("--new-passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@key.command("list")
@OUTPUT_OPTION
@pass_target
def key_list(target: RepoTarget, output: str) -> None:
    repository = target.open()
    keys = list_keys(repository.storage)
    rows = [[("*" if k.id == repository.key_id else " ") + k.id[:8], k.created[:19], k.host, k.user] for k in keys]
    emit(output, [asdict(k) for k in keys], table(["ID", "CREATED", "HOST", "USER"], rows))


@key.command("add")
@_NEW
@pass_target
def key_add(target: RepoTarget, new_passphrase_file: Path | None) -> None:
    """Add a key file for another passphrase."""
    repository = target.open(lock="key add", exclusive=True)
    new_id = _add_key(repository.storage, repository.master, target, new_passphrase_file)
    click.echo(f"added key {new_id[:8]}")


@key.command("remove")
@click.argument("key_id")
@pass_target
def key_remove(target: RepoTarget, key_id: str) -> None:
    """Remove a key file (never the last one)."""
    repository = target.open(lock="key remove", exclusive=True)
    matches = [k.id for k in list_keys(repository.storage) if k.id.startswith(key_id)]
    if len(matches) != 1:
        raise ResourceNotFound(f"{len(matches)} keys match {key_id!r}; `lifeboat repo key list` shows them")
    remove_key(repository.storage, matches[0])
    click.echo(f"removed key {matches[0][:8]}")


@key.command("passwd")
@_NEW
@pass_target
def key_passwd(target: RepoTarget, new_passphrase_file: Path | None) -> None:
    """Replace the key that opened the repository with one for a new passphrase."""
    repository = target.open(lock="key passwd", exclusive=True)
    if not repository.key_id:
        raise LifeboatError("opened with a recovery kit: use `key add` to set a passphrase")
    new_id = _add_key(repository.storage, repository.master, target, new_passphrase_file)
    remove_key(repository.storage, repository.key_id)
    click.echo(f"changed passphrase: key {repository.key_id[:8]} replaced by {new_id[:8]}")


@key.command("export")
@click.option("-f", "--file", "out_file", type=click.Path(dir_okay=False, path_type=Path))
@pass_target
def key_export(target: RepoTarget, out_file: Path | None) -> None:
    """Write a recovery kit: with the storage alone, it opens the repository. Keep it safe."""
    repository = target.open()
    kit = recovery_kit(repository.master, repository.config.id)
    if out_file is None:
        click.echo(kit, nl=False)
        return
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(kit)
    click.echo(f"wrote recovery kit to {out_file}", err=True)


@key.command("import")
@click.argument("kit_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_NEW
@pass_target
def key_import(target: RepoTarget, kit_file: Path, new_passphrase_file: Path | None) -> None:
    """Regain access from a recovery kit: add a key file for a new passphrase."""
    master, repository_id = master_key_from_kit(kit_file.read_text())
    repository = Repository.open_with_master_key(target.storage(), master)
    if repository_id and repository_id != repository.config.id:
        raise LifeboatError(f"the kit is for repository {repository_id[:8]}, not {repository.config.id[:8]}")
    new_id = _add_key(repository.storage, master, target, new_passphrase_file)
    click.echo(f"added key {new_id[:8]} from the recovery kit")


def _leaves(group: click.Group) -> list[click.Command]:
    commands = []
    for command in group.commands.values():
        commands += _leaves(command) if isinstance(command, click.Group) else [command]
    return commands


for _verb in _leaves(repo):
    _verb.params.extend(repository_options())
