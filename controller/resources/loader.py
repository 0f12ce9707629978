"""Load resources from files: every document validated, every problem located (file:line field).

A broken document, file or duplicate never stops the others from loading: problems are
collected beside the resources that did load, and the caller decides what to do with each.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.errors import ResourceProblem
from controller.resources.documents import compose, line_of_path, split_documents
from controller.resources.kinds import KINDS, Resource, kind_choices
from controller.resources.meta import API_VERSION, UNION_TAGS, StatusMode, spec_generation

SIDECAR_SUFFIX = ".status.yaml"


@dataclass(frozen=True)
class LoadedResource:
    """A valid resource and where it came from."""

    resource: Resource
    path: Path
    document: int  # index among the file's documents
    line: int  # 1-based line of the document's first key
    generation: str  # hash of spec as written

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.metadata.name

    @property
    def status_mode(self) -> StatusMode:
        return self.resource.spec.status_mode if hasattr(self.resource.spec, "status_mode") else StatusMode.INLINE


@dataclass
class LoadResult:
    resources: list[LoadedResource] = field(default_factory=list)
    problems: list[ResourceProblem] = field(default_factory=list)

    def get(self, kind: str, name: str) -> LoadedResource | None:
        return next((r for r in self.resources if r.kind == kind and r.name == name), None)

    def of_kind(self, kind: str) -> list[LoadedResource]:
        return [r for r in self.resources if r.kind == kind]

    def extend(self, other: LoadResult) -> None:
        self.resources.extend(other.resources)
        self.problems.extend(other.problems)


def is_resource_file(path: Path) -> bool:
    return path.suffix in {".yaml", ".yml"} and not path.name.endswith(SIDECAR_SUFFIX)


def resource_files(root: Path) -> Iterator[Path]:
    """Resource files under root (or root itself), sorted so that results are stable.

    Hidden files and directories are skipped. Symlinked directories are followed, once
    each: git-sync publishes its checkout as a symlink to the current worktree (which
    lives in a hidden directory, so old worktrees are never read).
    """
    if root.is_file():
        yield root
        return
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        status = os.stat(directory)
        if (status.st_dev, status.st_ino) in seen:
            subdirectories.clear()
            continue
        seen.add((status.st_dev, status.st_ino))
        subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
        for name in files:
            path = Path(directory, name)
            if not name.startswith(".") and is_resource_file(path) and path.is_file():
                found.append(path)
    yield from sorted(found)


def load_paths(paths: Iterable[Path]) -> LoadResult:
    """Load every resource file under the given files or directories; report duplicates."""
    result = LoadResult()
    for root in paths:
        if not root.exists():
            result.problems.append(ResourceProblem(str(root), None, "", "no such file or directory"))
            continue
        for path in resource_files(root):
            result.extend(load_file(path))
    return _without_duplicates(result)


def load_file(path: Path) -> LoadResult:
    result = LoadResult()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        result.problems.append(ResourceProblem(str(path), None, "", f"cannot read file: {err}"))
        return result
    sidecar = _read_sidecar(path, result.problems)
    for document in split_documents(text):
        loaded = parse_document(path, document.text_of(text), document.index, document.first_line, sidecar)
        if isinstance(loaded, LoadedResource):
            result.resources.append(loaded)
        else:
            result.problems.extend(loaded)
    return result


def parse_document(
    path: Path,
    text: str,
    index: int,
    first_line: int,
    sidecar: dict[str, Any] | None = None,
) -> LoadedResource | list[ResourceProblem]:
    """Validate one document; on failure, every problem with its absolute line number."""
    where = str(path)
    try:
        root = compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = first_line + mark.line if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        return [ResourceProblem(where, line, "", f"YAML syntax error: {problem}")]

    def at(loc: tuple[str | int, ...]) -> int:
        found = line_of_path(root, loc)
        return first_line + (found or 0)

    if not isinstance(data, dict):
        return [ResourceProblem(where, at(()), "", "expected a mapping with apiVersion, kind, metadata and spec")]
    kind = data.get("kind")
    name = _name_of(data)
    if data.get("apiVersion") != API_VERSION:
        got = data.get("apiVersion")
        return [
            ResourceProblem(
                where,
                at(("apiVersion",)),
                "apiVersion",
                f"expected {API_VERSION}, got {got!r}",
                kind if isinstance(kind, str) else None,
                name,
            )
        ]
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = f"unknown kind {kind!r}; expected one of {kind_choices()}"
        return [ResourceProblem(where, at(("kind",)), "kind", message, None, name)]
    status_mode = _status_mode(data)
    if sidecar is not None and status_mode == StatusMode.SIDECAR:
        data = {**data, "status": sidecar.get(f"{kind}/{name}")}
    try:
        resource = model.model_validate(data)
    except ValidationError as err:
        return [
            ResourceProblem(where, at(tuple(e["loc"])), _field_path(e["loc"]), _message(e), kind, name)
            for e in err.errors()
        ]
    generation = spec_generation(data.get("spec"))
    return LoadedResource(resource, path, index, at(()), generation)


def _name_of(data: dict[str, Any]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _status_mode(data: dict[str, Any]) -> StatusMode:
    spec = data.get("spec")
    mode = spec.get("statusMode") if isinstance(spec, dict) else None
    return StatusMode.SIDECAR if mode == StatusMode.SIDECAR.value else StatusMode.INLINE


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _read_sidecar(path: Path, problems: list[ResourceProblem]) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.exists():
        return None
    try:
        data = yaml.safe_load(side.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        problems.append(ResourceProblem(str(side), None, "", f"cannot read status sidecar: {err}"))
        return None
    return data if isinstance(data, dict) else None


def _field_path(loc: tuple[str | int, ...]) -> str:
    text = ""
    for step in loc:
        if step in UNION_TAGS:
            continue
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text


def _message(error: Any) -> str:
    kind: str = error["type"]
    message: str = error["msg"]
    if kind == "extra_forbidden":
        return "unknown field (check the spelling against the kind's schema in crds/)"
    if kind == "missing":
        return "required field is missing"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _without_duplicates(result: LoadResult) -> LoadResult:
    """Keep the first of each kind+name (in file order); report the others naming both places."""
    seen: dict[tuple[str, str], LoadedResource] = {}
    kept = LoadResult(problems=list(result.problems))
    for loaded in result.resources:
        key = (loaded.kind, loaded.name)
        first = seen.get(key)
        if first is None:
            seen[key] = loaded
            kept.resources.append(loaded)
            continue
        kept.problems.append(
            ResourceProblem(
                str(loaded.path),
                loaded.line,
                "metadata.name",
                f"duplicate {loaded.kind} name; also defined at {first.path}:{first.line}",
                loaded.kind,
                loaded.name,
            )
        )
    return kept
