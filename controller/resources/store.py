"""The resources directory as a store: apply (create or update by kind+name), diff, delete.

Applied documents keep their comments; the status of an existing resource is kept (it
belongs to the controller), and a status in the applied file is ignored. Writes are atomic
and serialised with the controller's status writes on the same directory lock.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from controller.durable import fsync_directory
from controller.errors import Conflict, ResourceNotFound
from controller.resources.atomic_write import directory_lock, write_atomically
from controller.resources.documents import Document, split_documents
from controller.resources.loader import LoadedResource, LoadResult, load_paths, sidecar_path
from controller.resources.restore import Restore, RestorePhase
from controller.resources.writeback import find_document, replace_status_block

_FOLDERS = {"BackupStorage": "storages", "BackupPolicy": "policies", "Restore": "restores"}


class Action(StrEnum):
    CREATED = "created"  # a new file was written
    CONFIGURED = "configured"  # an existing document's spec or metadata changed
    UNCHANGED = "unchanged"  # the document already says this
    DELETED = "deleted"  # the document was removed


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: Action
    path: Path
    diff: str  # unified diff of metadata+spec, empty when unchanged


def document_text(loaded: LoadedResource) -> str:
    """The source text of a loaded document, comments included."""
    text = loaded.path.read_text(encoding="utf-8")
    return split_documents(text)[loaded.document].text_of(text)


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """What `diff` and `apply` compare: metadata (minus derived fields) and spec."""
    metadata = dict(document.get("metadata") or {})
    metadata.pop("generation", None)
    return {"metadata": metadata, "spec": document.get("spec")}


def spec_diff(kind: str, name: str, live: dict[str, Any] | None, wanted: dict[str, Any]) -> str:
    def lines(data: dict[str, Any] | None) -> list[str]:
        if data is None:
            return []
        return yaml.safe_dump(comparable(data), sort_keys=True, default_flow_style=False).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(live), lines(wanted), f"live/{kind}/{name}", f"applied/{kind}/{name}"))


class ResourceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self) -> LoadResult:
        if not self.root.exists():
            return LoadResult()
        return load_paths([self.root])

    def apply(self, incoming: list[LoadedResource], dry_run: bool = False) -> list[Change]:
        """Create or update each incoming resource; `dry_run` reports without writing."""
        changes = []
        for loaded in incoming:
            wanted_text = replace_status_block(document_text(loaded), None, str(loaded.path))
            live = self.load().get(loaded.kind, loaded.name)
            if live is None:
                changes.append(self._create(loaded, wanted_text, dry_run))
            else:
                changes.append(self._update(live, loaded, wanted_text, dry_run))
        return changes

    def diff(self, incoming: list[LoadedResource]) -> list[Change]:
        return self.apply(incoming, dry_run=True)

    def _create(self, loaded: LoadedResource, text: str, dry_run: bool) -> Change:
        path = self.root / _FOLDERS[loaded.kind] / f"{loaded.name}.yaml"
        wanted = yaml.safe_load(text)
        diff = spec_diff(loaded.kind, loaded.name, None, wanted)
        change = Change(loaded.kind, loaded.name, Action.CREATED, path, diff)
        if dry_run:
            return change
        path.parent.mkdir(parents=True, exist_ok=True)
        with directory_lock(path.parent):
            if path.exists():
                raise FileExistsError(f"{path} exists but does not hold {loaded.kind} {loaded.name!r}")
            write_atomically(path, text if text.endswith("\n") else text + "\n")
        return change

    def _update(self, live: LoadedResource, loaded: LoadedResource, text: str, dry_run: bool) -> Change:
        live_data = yaml.safe_load(document_text(live))
        wanted = yaml.safe_load(text)
        diff = spec_diff(loaded.kind, loaded.name, live_data, wanted)
        _refuse_a_finished_restore(live, bool(diff))
        action = Action.CONFIGURED if diff else Action.UNCHANGED
        if dry_run or not diff:
            return Change(loaded.kind, loaded.name, action, live.path, diff)
        with directory_lock(live.path.parent):
            file_text = live.path.read_text(encoding="utf-8")
            document = find_document(file_text, live.kind, live.name)
            if document is None:
                raise ResourceNotFound(f"{live.path}: {live.kind} {live.name!r} disappeared while applying; retry")
            old_status = live_data.get("status") if isinstance(live_data, dict) else None
            body = text if text.endswith("\n") else text + "\n"
            new_doc = replace_status_block(body, old_status, str(live.path)) if old_status else body
            write_atomically(live.path, file_text[: document.start] + new_doc + file_text[document.end :])
        return Change(loaded.kind, loaded.name, action, live.path, diff)

    def delete(self, kind: str, name: str, force: bool = False) -> Change:
        """Remove the resource's document. A BackupStorage that policies still name is
        refused unless `force`: their backups would have nowhere to go."""
        loaded = self.load()
        live = loaded.get(kind, name)
        if live is None:
            raise ResourceNotFound(f'{kind} "{name}" not found in {self.root}')
        users = sorted(
            p.name for p in loaded.of_kind("BackupPolicy") if getattr(p.resource.spec, "storage", None) == name
        )
        if kind == "BackupStorage" and users and not force:
            raise Conflict(
                f'BackupStorage "{name}" is used by BackupPolicy {", ".join(users)}; '
                "delete or repoint them first, or delete with --force"
            )
        with directory_lock(live.path.parent):
            text = live.path.read_text(encoding="utf-8")
            documents = split_documents(text)
            target = find_document(text, kind, name)
            if target is None:
                raise ResourceNotFound(f'{kind} "{name}" disappeared from {live.path} while deleting; retry')
            if len(documents) == 1:
                live.path.unlink()
                fsync_directory(live.path.parent)
            else:
                write_atomically(live.path, _without_document(text, target.index, documents))
            self._forget_sidecar_status(live)
        return Change(kind, name, Action.DELETED, live.path, "")

    @staticmethod
    def _forget_sidecar_status(live: LoadedResource) -> None:
        side = sidecar_path(live.path)
        if not side.exists():
            return
        statuses = yaml.safe_load(side.read_text(encoding="utf-8")) or {}
        if statuses.pop(f"{live.kind}/{live.name}", None) is None:
            return
        if statuses:
            write_atomically(side, yaml.safe_dump(statuses, sort_keys=True, default_flow_style=False))
        else:
            side.unlink()


def _without_document(text: str, index: int, documents: list[Document]) -> str:
    """The file text minus one document and the marker line that separated it."""
    document = documents[index]
    if document.start > 0:
        marker_start = text.rfind("\n", 0, document.start - 1) + 1
        return text[:marker_start] + text[document.end :]
    following = documents[index + 1]
    return text[: document.start] + text[following.start :]


def _refuse_a_finished_restore(live: LoadedResource, changed: bool) -> None:
    """A Restore runs once: after its terminal phase a changed spec would never run, so it
    is refused rather than reported as configured."""
    restore = live.resource
    if not changed or not isinstance(restore, Restore) or restore.status is None:
        return
    status = restore.status
    if status.phase in (RestorePhase.SUCCEEDED, RestorePhase.FAILED, RestorePhase.ROLLED_BACK):
        raise Conflict(
            f'{live.path}: Restore "{live.name}" has finished ({status.phase.value}) and never runs again, '
            "so its spec cannot change; apply a Restore with a new name"
        )
