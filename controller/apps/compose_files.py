"""A clone's copy of a Compose project's files, rewritten so that it can run beside its
source: no published host ports (unless kept), no fixed container or volume names, and its
own volumes where the source used external ones. Compose 1.x cannot remove a setting with
an override file, so the clone's copy is rewritten (its comments are lost; the source's
files are untouched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.errors import RestoreFailed
from controller.resources.documents import YamlSyntaxError, dump_yaml, parse_yaml


def rewrite_for_clone(files: list[Path], keep_ports: bool) -> None:
    """Rewrite the clone's compose files in place."""
    for path, document in zip(files, _documents(files), strict=True):
        for settings in (document.get("services") or {}).values():
            if not isinstance(settings, dict):
                continue
            settings.pop("container_name", None)
            if not keep_ports:
                settings.pop("ports", None)
        for settings in (document.get("volumes") or {}).values():
            if isinstance(settings, dict):
                settings.pop("name", None)
                settings.pop("external", None)
        path.write_text(dump_yaml(document))


def _documents(files: list[Path]) -> list[dict[str, Any]]:
    documents = []
    for path in files:
        try:
            document = parse_yaml(path.read_text())
        except (OSError, YamlSyntaxError) as err:
            raise RestoreFailed(f"{path}: cannot read the compose file ({err})") from None
        documents.append(document if isinstance(document, dict) else {})
    return documents
