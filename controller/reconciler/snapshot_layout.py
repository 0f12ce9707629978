"""How an app becomes one snapshot, and back: databases/SERVICE.EXT (dump streams),
volumes/KEY, mounts/SERVICE/DEST, paths/PATH, the app itself (app/definition.json,
app/project/ the Compose project's folder, app/outside/ its compose and env files kept
elsewhere, images/ID.tar the saved images), and a manifest at the root saying, for each
volumes/ and mounts/ folder, which services mount it at which destinations. A restore finds
its targets through those mounts, whatever made the volume (Compose, `docker volume
create`, an external volume). The backup run writes this layout; the restore run reads it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from controller.apps.datasources.inventory import DumpCounter, Inventory
from controller.apps.definition import (
    PROJECT_FILE_LIMIT,
    AppDefinition,
    capture_definition,
    outside_files,
    project_skips,
)
from controller.apps.discovery import App
from controller.apps.docker_api import DockerClient
from controller.apps.exec import OutputStream
from controller.apps.images import image_stream, should_save
from controller.catalog.models import BackupItem, ItemKind
from controller.errors import BackupCreateFailed, BackupNotFound, DumpFailed
from controller.repository.archiver import DirectorySource, Source, StreamSource
from controller.repository.file_reader import open_content
from controller.repository.records import Node, Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import find_node
from controller.resources.backup_policy import Include

MANIFEST = "lifeboat.json"  # at the snapshot's root: what the restore needs to map paths back
DEFINITION = "app/definition.json"
PROJECT = "app/project"
OUTSIDE = "app/outside"


@dataclass
class Layout:
    sources: list[Source] = field(default_factory=list)
    items: list[BackupItem] = field(default_factory=list)  # one per source but the manifest
    dumps: list[OutputStream] = field(default_factory=list)  # in the order of the DUMP items
    counters: dict[str, DumpCounter] = field(default_factory=dict)  # dump path → its tables and rows
    definition: AppDefinition | None = None  # the app itself, when recorded

    def inventory(self, dump: str) -> Inventory | None:
        """The dump's databases, tables and rows, once it has been read; None when its
        engine's format is not counted."""
        counter = self.counters.get(dump)
        return counter.inventory() if counter is not None else None


class _Deferred(io.RawIOBase):
    """Bytes made at the first read: the manifest, written after the dumps it describes."""

    def __init__(self, make: Callable[[], bytes]) -> None:
        self._make = make
        self._data: io.BytesIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._data is None:
            self._data = io.BytesIO(self._make())
        return self._data.readinto(target)


def snapshot_layout(client: DockerClient | None, app: App | None, include: Include, paths: list[str]) -> Layout:
    """The snapshot's sources for `app` (databases, volumes and bind mounts as `include` says)
    and the host `paths`."""
    layout = Layout()
    mounts: list[dict[str, str]] = []
    volumes: list[dict[str, object]] = []
    if client is not None and app is not None and include.databases:
        for database in app.databases:
            if not database.container.running:
                raise DumpFailed(f"database service {database.service} ({database.container.name}) is not running")
            name = f"databases/{database.service}.{database.source.dump_suffix}"
            inventory = database.source.inventory
            counter = inventory.dump_counter() if inventory is not None else None
            if counter is not None:
                layout.counters[name] = counter
            stream = OutputStream(
                client,
                database.container.id,
                database.source.dump_command(database.credentials, database.names),
                DumpFailed,
                database.source.dump_is_complete,
                where=database.container.name,
                observe=counter.feed if counter is not None else None,
            )
            layout.sources.append(StreamSource(name, stream))  # type: ignore[arg-type]
            layout.dumps.append(stream)
            layout.items.append(BackupItem(backup_id="", kind=ItemKind.DUMP, name=name))
    if app is not None:
        for volume in app.volumes():
            if any(fnmatch(volume.key, p) or fnmatch(volume.name, p) for p in include.volumes):
                name = f"volumes/{volume.key}"
                mounted_at = [
                    {"service": container.service, "destination": mount.destination}
                    for container in app.containers
                    for mount in container.volumes
                    if mount.name == volume.name
                ]
                volumes.append({"path": name, "volume": volume.name, "mounts": mounted_at})
                _add(layout, name, volume.mountpoint, ItemKind.VOLUME)
        if include.bind_mounts:
            seen: set[Path] = set()
            for container in app.containers:
                for bind in container.binds:
                    if bind.source in seen or not bind.source.is_dir():
                        continue  # a mounted file (a socket, a config file) is not a tree to copy
                    seen.add(bind.source)
                    name = f"mounts/{container.service}/{bind.destination.strip('/')}"
                    mounts.append({"path": name, "service": container.service, "destination": bind.destination})
                    _add(layout, name, bind.source, ItemKind.BIND_MOUNT)
    if client is not None and app is not None and include.definition:
        _add_definition(layout, client, app, include)
    for path in paths:
        if not Path(path).is_dir():
            raise BackupCreateFailed(f"path {path} (in the policy's paths) is not a directory on this host")
        _add(layout, f"paths/{path.strip('/')}", Path(path), ItemKind.PATH)
    if layout.sources:

        def manifest() -> bytes:
            dumps = [{"path": path, "inventory": layout.inventory(path)} for path in layout.counters]
            written = {"app": app.name if app else None, "volumes": volumes, "mounts": mounts, "paths": list(paths)}
            return json.dumps({**written, "databases": dumps}, indent=2).encode()

        layout.sources.append(StreamSource(MANIFEST, _Deferred(manifest)))  # type: ignore[arg-type]
    return layout


def _add_definition(layout: Layout, client: DockerClient, app: App, include: Include) -> None:
    """The app itself: its definition, its project folder's small files, the compose and env
    files kept elsewhere, and the images to save."""
    definition = capture_definition(client, app)
    for image in definition.images:
        if should_save(image, include.images):
            image.saved = f"images/{image.image_id.removeprefix('sha256:')}.tar"
            layout.sources.append(StreamSource(image.saved, image_stream(client, image)))  # type: ignore[arg-type]
            layout.items.append(BackupItem(backup_id="", kind=ItemKind.IMAGE, name=image.saved))
    if definition.working_dir is not None and Path(definition.working_dir).is_dir():
        folder = Path(definition.working_dir)
        source = DirectorySource(PROJECT, folder, project_skips(definition, app), PROJECT_FILE_LIMIT)
        layout.sources.append(source)
        layout.items.append(BackupItem(backup_id="", kind=ItemKind.DEFINITION, name=PROJECT))
    for outside in outside_files(definition):
        layout.sources.append(StreamSource(f"{OUTSIDE}{outside}", io.BytesIO(outside.read_bytes())))
    text = json.dumps(definition.to_json(), indent=2).encode()
    layout.sources.append(StreamSource(DEFINITION, io.BytesIO(text)))
    layout.items.append(BackupItem(backup_id="", kind=ItemKind.DEFINITION, name=DEFINITION))
    layout.definition = definition


def read_definition(repository: Repository, snapshot: Snapshot) -> AppDefinition | None:
    """The app's definition the snapshot recorded; None for one taken without it."""
    try:
        node = find_node(repository, snapshot, DEFINITION)
    except BackupNotFound:
        return None
    return AppDefinition.from_json(json.loads(open_content(repository, node).read()))


def _add(layout: Layout, name: str, path: Path, kind: ItemKind) -> None:
    layout.sources.append(DirectorySource(name, path))
    layout.items.append(BackupItem(backup_id="", kind=kind, name=name))


def read_manifest(repository: Repository, snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot's manifest; {} for a snapshot that has none."""
    try:
        node = find_node(repository, snapshot, MANIFEST)
    except BackupNotFound:
        return {}
    loaded: dict[str, Any] = json.loads(open_content(repository, node).read())
    return loaded


def children(repository: Repository, snapshot: Snapshot, folder: str) -> list[Node]:
    """The entries of a top-level folder of the snapshot (volumes, databases); [] when absent."""
    try:
        node = find_node(repository, snapshot, folder)
    except BackupNotFound:
        return []
    return repository.load_tree(node.subtree) if node.subtree else []
