"""Write a resource's status back to its file, touching no other byte.

Only the top-level `status:` block of the one document is replaced (or appended when
absent); comments, key order, quoting and the other documents stay byte-for-byte. The
write is atomic and refused with `WriteConflict` when the document's spec changed since
the caller read it, so a person's edit is never overwritten by a stale controller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.errors import InvalidResource, ResourceProblem, WriteConflict
from controller.resources.atomic_write import directory_lock, write_atomically
from controller.resources.documents import Document, compose, mapping_value, split_documents
from controller.resources.kinds import Status
from controller.resources.loader import sidecar_path
from controller.resources.meta import StatusMode, spec_generation


@dataclass(frozen=True)
class WriteResult:
    path: Path  # the file written (the resource file, or its sidecar)
    digest: str  # sha256 of the file's bytes after the call, to recognise our own file events
    changed: bool  # False when the status on disk was already this one


def status_mapping(status: Status) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def write_status(
    path: Path,
    kind: str,
    name: str,
    expected_generation: str,
    status: Status,
    mode: StatusMode = StatusMode.INLINE,
) -> WriteResult:
    """Write `status` for kind/name in `path`. Raises WriteConflict if the spec moved on."""
    with directory_lock(path.parent):
        text = path.read_text(encoding="utf-8")
        document = find_document(text, kind, name)
        if document is None:
            raise WriteConflict(f"{path}: {kind} {name!r} is no longer in this file; re-read and retry")
        data = yaml.safe_load(document.text_of(text))
        if spec_generation(data.get("spec")) != expected_generation:
            raise WriteConflict(f"{path}: {kind} {name!r} spec changed since it was read; re-read and retry")
        mapping = status_mapping(status)
        if mode == StatusMode.SIDECAR:
            return _write_sidecar(sidecar_path(path), f"{kind}/{name}", mapping)
        new_doc = replace_status_block(document.text_of(text), mapping, str(path))
        new_text = text[: document.start] + new_doc + text[document.end :]
        return _write_if_changed(path, text, new_text)


def find_document(text: str, kind: str, name: str) -> Document | None:
    """The document of kind/name in a file's text; unparseable documents are skipped."""
    for document in split_documents(text):
        try:
            data = yaml.safe_load(document.text_of(text))
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict) or data.get("kind") != kind:
            continue
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and metadata.get("name") == name:
            return document
    return None


def read_document(path: Path, kind: str, name: str) -> dict[str, Any] | None:
    """The document of kind/name in the file at `path`, parsed; None when there is none."""
    text = path.read_text(encoding="utf-8")
    document = find_document(text, kind, name)
    if document is None:
        return None
    data = yaml.safe_load(document.text_of(text))  # find_document parsed it already: it parses
    return data if isinstance(data, dict) else None


def replace_status_block(doc_text: str, status: dict[str, Any] | None, where: str = "") -> str:
    """The document with its top-level status block replaced (appended if absent, removed if None).

    The block is the `status:` key's line through the last line of its value: following
    blank lines and comments at the key's indentation or less belong to what comes next.
    """
    root = compose(doc_text)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise InvalidResource(
            [
                ResourceProblem(
                    where,
                    None,
                    "status",
                    "cannot write status into a flow-style or non-mapping "
                    "document; write it in block style or set spec.statusMode: sidecar",
                )
            ]
        )
    lines = doc_text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    pair = mapping_value(root, "status")
    column = root.start_mark.column
    block = "" if status is None else _render_status(status, column)
    if pair is None:
        if not block:
            return doc_text
        separator = "" if doc_text.endswith("\n") or not doc_text else "\n"
        return doc_text + separator + block
    key_line = pair[0].start_mark.line
    later_keys = [k.start_mark.line for k, _ in root.value if k.start_mark.line > key_line]
    end_line = min(later_keys) if later_keys else len(lines)
    while end_line - 1 > key_line and _belongs_to_next(lines[end_line - 1], column):
        end_line -= 1
    return doc_text[: offsets[key_line]] + block + doc_text[offsets[end_line] :]


def _belongs_to_next(line: str, column: int) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    indent = len(line) - len(line.lstrip())
    return stripped.startswith("#") and indent <= column


def _render_status(status: dict[str, Any], column: int) -> str:
    text = yaml.safe_dump({"status": status}, sort_keys=False, default_flow_style=False, allow_unicode=True, width=4096)
    if column:
        text = "".join(" " * column + line for line in text.splitlines(keepends=True))
    return text


def _write_sidecar(path: Path, key: str, status: dict[str, Any]) -> WriteResult:
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    loaded = yaml.safe_load(old_text) if old_text else None
    statuses = loaded if isinstance(loaded, dict) else {}
    statuses[key] = status
    header = "# Written by the Lifeboat controller (statusMode: sidecar). Do not edit.\n"
    new_text = header + yaml.safe_dump(statuses, sort_keys=True, default_flow_style=False, width=4096)
    return _write_if_changed(path, old_text, new_text)


def _write_if_changed(path: Path, old_text: str, new_text: str) -> WriteResult:
    digest = hashlib.sha256(new_text.encode("utf-8")).hexdigest()
    if new_text == old_text:
        return WriteResult(path, digest, changed=False)
    write_atomically(path, new_text)
    return WriteResult(path, digest, changed=True)
