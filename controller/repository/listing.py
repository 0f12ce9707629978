"""What a snapshot holds, path by path (`repo ls`), and which snapshots hold a file by name
(`repo find`). Snapshots share most of their trees, so a search reads each tree once,
whatever the number of snapshots that hold it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase

from controller.repository.records import Node, NodeType
from controller.repository.repository import Repository, SnapshotEntry
from controller.repository.restorer import find_node


@dataclass(frozen=True)
class Entry:
    path: str  # from the snapshot's root, "/"-separated
    node: Node


def list_entries(repository: Repository, entry: SnapshotEntry, path: str = "") -> Iterator[Entry]:
    """Every entry at and below `path` (the whole snapshot when empty), parents first."""
    node = find_node(repository, entry.snapshot, path)
    if path:
        yield Entry(path.strip("/"), node)
    if node.type == NodeType.DIR and node.subtree:
        yield from _walk(repository, node.subtree, path.strip("/"))


def _walk(repository: Repository, tree_id: str, prefix: str) -> Iterator[Entry]:
    for node in repository.load_tree(tree_id):
        path = f"{prefix}/{node.name}" if prefix else node.name
        yield Entry(path, node)
        if node.type == NodeType.DIR and node.subtree:
            yield from _walk(repository, node.subtree, path)


class Finder:
    """Entries whose name matches a glob ("*.sql", "wp-config.php"), in every snapshot asked."""

    def __init__(self, repository: Repository, pattern: str) -> None:
        self.repository, self.pattern = repository, pattern
        self._found: dict[str, list[Entry]] = {}  # tree id → matches below it, relative

    def in_snapshot(self, entry: SnapshotEntry) -> list[Entry]:
        return self._in_tree(entry.snapshot.tree)

    def _in_tree(self, tree_id: str) -> list[Entry]:
        cached = self._found.get(tree_id)
        if cached is not None:
            return cached
        found: list[Entry] = []
        for node in self.repository.load_tree(tree_id):
            if fnmatchcase(node.name, self.pattern):
                found.append(Entry(node.name, node))
            if node.type == NodeType.DIR and node.subtree:
                found += [Entry(f"{node.name}/{e.path}", e.node) for e in self._in_tree(node.subtree)]
        self._found[tree_id] = found
        return found
