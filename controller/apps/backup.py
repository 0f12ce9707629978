"""Back up an app (and/or host paths) into one snapshot, and record it in the catalog.

Order (DESIGN.md §4): discover → pre-hooks → database dumps streamed into the repository →
quiesce per consistency → volumes, bind mounts and paths read from their mount points →
resume → snapshot → post-hooks → catalog row with one item per volume, mount, path, dump
and hook. The row says `completed` only when every one of them succeeded."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from docker import DockerClient

from controller.apps.discovery import App, discover
from controller.apps.exec import OutputStream
from controller.apps.hooks import run_hooks
from controller.apps.quiesce import Owner, Quiescer
from controller.catalog.catalog import Catalog
from controller.catalog.models import Backup, BackupItem, BackupStatus, ItemKind
from controller.errors import BackupCreateFailed, DumpFailed, LifeboatError, NothingToBackUp, QuotaExceeded
from controller.host import host_name
from controller.repository.archiver import (
    Archiver,
    ArchiveResult,
    DirectorySource,
    ProgressCallback,
    Source,
    StreamSource,
)
from controller.repository.repository import Repository, SnapshotEntry
from controller.resources.backup_policy import BackupPolicy, BackupType, Consistency, DatabaseOverride, Hooks, Include
from controller.resources.meta import SecretRef


@dataclass
class BackupRequest:
    app: str | None
    storage: str
    policy: str | None = None
    paths: list[str] = field(default_factory=list)
    backup_type: BackupType = BackupType.INCREMENTAL
    consistency: Consistency = Consistency.ONLINE
    include: Include = field(default_factory=Include)
    databases: list[DatabaseOverride] = field(default_factory=list)
    hooks: Hooks = field(default_factory=Hooks)
    compression: str = "auto"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # added to the snapshot's (e.g. safety=true)
    pending_id: str | None = None  # a pending catalog row made when the backup was requested (the API)

    @classmethod
    def from_policy(cls, policy: BackupPolicy) -> BackupRequest:
        spec = policy.spec
        return cls(
            app=spec.app,
            storage=spec.storage,
            policy=policy.metadata.name,
            paths=list(spec.paths),
            backup_type=spec.backup_type,
            consistency=spec.consistency,
            include=spec.include,
            databases=list(spec.databases),
            hooks=spec.hooks,
            compression=spec.compression.value,
        )


@dataclass(frozen=True)
class Quota:
    """Checked before anything is written: the repository's size against the storage's
    quotaBytes, and the files to read against limits.max_backup_size_gb."""

    repository_bytes: int | None = None
    backup_bytes: int | None = None

    def check(self, repository: Repository, sources: list[Source]) -> None:
        if self.repository_bytes is not None:
            used = sum(info.size for info in repository.storage.list(""))
            if used >= self.repository_bytes:
                raise QuotaExceeded(
                    f"the repository holds {used} bytes, at or over its quota of {self.repository_bytes} bytes; "
                    "prune, raise quotaBytes, or shorten retention"
                )
        if self.backup_bytes is not None:
            size = sum(_tree_size(s.path) for s in sources if isinstance(s, DirectorySource))
            if size > self.backup_bytes:
                raise QuotaExceeded(
                    f"the files to back up hold {size} bytes, over limits.max_backup_size_gb "
                    f"({self.backup_bytes} bytes)"
                )


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def new_backup_id(subject: str, when: datetime) -> str:
    return f"{subject}-{when.astimezone(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


MANIFEST = "lifeboat.json"  # at the snapshot's root: what the restore needs to map paths back


def snapshot_layout(
    client: DockerClient | None, app: App | None, request: BackupRequest
) -> tuple[list[Source], list[BackupItem], list[OutputStream]]:
    """The snapshot's sources: databases/SERVICE.sql, volumes/KEY, mounts/SERVICE/DEST, paths/PATH,
    and the manifest saying which mount each mounts/ folder is."""
    sources: list[Source] = []
    mounts: list[dict[str, str]] = []
    items: list[BackupItem] = []
    dumps: list[OutputStream] = []
    if client is not None and app is not None and request.include.databases:
        for database in app.databases:
            if not database.container.running:
                raise DumpFailed(f"database service {database.service} ({database.container.name}) is not running")
            stream = OutputStream(
                client,
                database.container.id,
                database.source.dump_command(database.credentials, database.names),
                DumpFailed,
                database.source.dump_is_complete,
            )
            name = f"databases/{database.service}.{database.source.dump_suffix}"
            sources.append(StreamSource(name, stream))  # type: ignore[arg-type]
            dumps.append(stream)
            items.append(BackupItem(backup_id="", kind=ItemKind.DUMP, name=name))
    if app is not None:
        for volume in app.volumes():
            if any(fnmatch(volume.key, p) or fnmatch(volume.name, p) for p in request.include.volumes):
                name = f"volumes/{volume.key}"
                sources.append(DirectorySource(name, volume.mountpoint))
                items.append(BackupItem(backup_id="", kind=ItemKind.VOLUME, name=name))
        if request.include.bind_mounts:
            seen: set[Path] = set()
            for container in app.containers:
                for bind in container.binds:
                    if bind.source in seen or not bind.source.is_dir():
                        continue  # a mounted file (a socket, a config file) is not a tree to copy
                    seen.add(bind.source)
                    name = f"mounts/{container.service}/{bind.destination.strip('/')}"
                    mounts.append({"path": name, "service": container.service, "destination": bind.destination})
                    sources.append(DirectorySource(name, bind.source))
                    items.append(BackupItem(backup_id="", kind=ItemKind.BIND_MOUNT, name=name))
    for path in request.paths:
        if not Path(path).is_dir():
            raise BackupCreateFailed(f"path {path} (in the policy's paths) is not a directory on this host")
        name = f"paths/{path.strip('/')}"
        sources.append(DirectorySource(name, Path(path)))
        items.append(BackupItem(backup_id="", kind=ItemKind.PATH, name=name))
    if sources:
        manifest = {"app": app.name if app else None, "mounts": mounts, "paths": list(request.paths)}
        sources.append(StreamSource(MANIFEST, io.BytesIO(json.dumps(manifest, indent=2).encode())))
    return sources, items, dumps


class AppBackup:
    def __init__(
        self,
        client: DockerClient | None,
        catalog: Catalog,
        repository: Repository,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        read_secret: Callable[[SecretRef], str] | None = None,
        progress: ProgressCallback | None = None,
        uploads: int = 2,
        quota: Quota | None = None,
    ) -> None:
        self.client, self.catalog, self.repository = client, catalog, repository
        self.quota = quota or Quota()
        self.clock, self.read_secret = clock, read_secret
        self.progress, self.uploads = progress, uploads

    def run(self, request: BackupRequest) -> Backup:
        """Take the backup; returns its completed catalog row, or raises after recording it failed."""
        row = self._start_row(request)
        items: list[BackupItem] = []
        try:
            app = self._discover(request)
            if app is not None:
                items += run_hooks(self._client(), app, request.hooks.pre, "pre")
            result, content_items = self._archive(row, app, request)
            items += content_items
            if app is not None:
                items += run_hooks(self._client(), app, request.hooks.post, "post")
        except LifeboatError as err:
            self._fail(row, items, err)
            raise
        except Exception as err:  # a bug or an OS error: the row must not stay in_progress
            self._fail(row, items, BackupCreateFailed(f"{err.__class__.__name__}: {err}"))
            raise
        row.snapshot_id, row.parent_id = result.id, result.snapshot.parent
        row.size_bytes, row.bytes_added = result.snapshot.summary.bytes, result.snapshot.summary.bytes_added
        row.files, row.completed_at = result.snapshot.summary.files, self.clock()
        if result.problems:
            row.status, row.error_code = BackupStatus.FAILED, BackupCreateFailed.code
            row.error_message = f"{len(result.problems)} problem(s): " + "; ".join(result.problems[:5])
        else:
            row.status = BackupStatus.COMPLETED
        self._save(row, items)
        if result.problems:
            raise BackupCreateFailed(f"backup {row.backup_id} is incomplete: {row.error_message}")
        return row

    def _start_row(self, request: BackupRequest) -> Backup:
        """The backup's row, in_progress: a new one, or the pending row made at request time."""
        if request.pending_id is not None:
            row = self.catalog.get_backup(request.pending_id)
            row.status, row.storage_location = BackupStatus.IN_PROGRESS, self.repository.storage.describe()
            row.owner = Owner.this_process().token
            return self.catalog.save_backup(row)
        started = self.clock()
        subject = request.app or request.policy or "paths"
        return self.catalog.add_backup(
            Backup(
                backup_id=new_backup_id(subject, started),
                app_id=subject,
                app_name=subject,
                backup_type=request.backup_type.value,
                description=request.description,
                status=BackupStatus.IN_PROGRESS,
                created_at=started,
                policy=request.policy,
                storage=request.storage,
                storage_location=self.repository.storage.describe(),
                compressed=request.compression != "off",
                host=host_name(),
                owner=Owner.this_process().token,
            )
        )

    def _client(self) -> DockerClient:
        if self.client is None:
            raise BackupCreateFailed("backing up an app needs the Docker engine")
        return self.client

    def _discover(self, request: BackupRequest) -> App | None:
        if request.app is None:
            if not request.paths:
                raise NothingToBackUp("nothing to back up: no app and no paths")
            return None
        return discover(self._client(), request.app, request.databases, self.read_secret)

    def _archive(self, row: Backup, app: App | None, request: BackupRequest) -> tuple[ArchiveResult, list[BackupItem]]:
        sources, items, dumps = snapshot_layout(self.client, app, request)
        self.quota.check(self.repository, sources)
        if not sources:
            raise NothingToBackUp(
                f"app {request.app!r} has nothing to back up: no volume, bind-mounted directory or database"
                + (" matches the policy's include" if app is not None else "")
            )
        quiescer = None
        if app is not None and request.consistency != Consistency.ONLINE:
            action = "paused" if request.consistency == Consistency.PAUSE else "stopped"
            quiescer = Quiescer(
                self._client(), self.catalog, app.name, app.containers, action, row.backup_id, self.clock
            )
        archiver = Archiver(
            self.repository,
            parent=self._parent(request),
            compression=request.compression,
            uploads=self.uploads,
            progress=self.progress,
            after_streams=quiescer.quiesce if quiescer is not None else None,
        )
        tags = {
            **({"app": request.app} if request.app else {}),
            **({"policy": request.policy} if request.policy else {}),
            "type": request.backup_type.value,
            "backup": row.backup_id,
            **request.tags,
        }
        time_text = row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        try:
            result = archiver.run(sources, tags, host_name(), time_text)
        finally:
            if quiescer is not None:
                quiescer.resume()
        for item in items:
            stats = result.sources.get(item.name)
            if stats is not None:
                item.files, item.bytes = stats.files, stats.bytes
        for item, dump in zip([i for i in items if i.kind == ItemKind.DUMP], dumps, strict=True):
            item.exit_code = 0
            item.bytes = dump.bytes_read
        return result, items

    def _parent(self, request: BackupRequest) -> SnapshotEntry | None:
        """Incremental: the subject's latest snapshot; differential: its latest full one."""
        if request.backup_type == BackupType.FULL:
            return None
        subject = {"app": request.app} if request.app else {"policy": request.policy or ""}
        candidates = [
            entry
            for entry in self.repository.snapshots()
            if all(entry.snapshot.tags.get(k) == v for k, v in subject.items())
            and (request.backup_type == BackupType.INCREMENTAL or entry.snapshot.tags.get("type") == "full")
        ]
        return candidates[-1] if candidates else None

    def _fail(self, row: Backup, items: list[BackupItem], err: LifeboatError) -> None:
        row.status, row.error_code, row.error_message = BackupStatus.FAILED, err.code, str(err)
        row.completed_at = self.clock()
        self._save(row, items)

    def _save(self, row: Backup, items: list[BackupItem]) -> None:
        self.catalog.save_backup(row)
        self.catalog.add_items(row.backup_id, items)
