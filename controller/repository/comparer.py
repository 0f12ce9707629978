"""Compare a directory with a snapshot's tree: what a restore would add, change and delete
(the dry run), and, after a restore, the proof that the directory is the snapshot (the
check before a restore may say Succeeded).

Every path is compared by type, size, permission bits, owner (when running as root, as the
restorer sets owners only then), modification time and symlink target; every regular
file's content is chunked and hashed as the archiver does and compared with the snapshot's
content ids, so a byte changed after the restore wrote it is found. Extended attributes are
not compared."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pyfastcdc import FastCDC

from controller.repository.records import Node, NodeType, Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import find_node

_TYPES = {
    stat.S_IFREG: NodeType.FILE,
    stat.S_IFDIR: NodeType.DIR,
    stat.S_IFLNK: NodeType.SYMLINK,
    stat.S_IFIFO: NodeType.FIFO,
    stat.S_IFCHR: NodeType.CHARDEV,
    stat.S_IFBLK: NodeType.BLOCKDEV,
}


@dataclass
class TreeDiff:
    added: list[str] = field(default_factory=list)  # in the snapshot, not in the directory
    changed: list[str] = field(default_factory=list)  # "PATH (what differs)"
    deleted: list[str] = field(default_factory=list)  # in the directory, not in the snapshot
    files: int = 0  # regular files compared
    bytes: int = 0  # their bytes, hashed

    def is_empty(self) -> bool:
        return not (self.added or self.changed or self.deleted)

    def describe(self, first: int = 5) -> str:
        """ "1 to add (a.txt), 1 to change (readme.txt (content)), 1 to delete (extra.txt)"."""
        parts = []
        for what, paths in (("add", self.added), ("change", self.changed), ("delete", self.deleted)):
            if paths:
                more = f", {len(paths) - first} more" if len(paths) > first else ""
                parts.append(f"{len(paths)} to {what} ({', '.join(paths[:first])}{more})")
        return ", ".join(parts) or "nothing differs"


class Comparer:
    def __init__(self, repository: Repository, content: bool = True) -> None:
        """`content` False: metadata only (a quick preview); True: every file hashed too."""
        self.repository, self.content = repository, content
        self._owners = os.geteuid() == 0
        params = repository.config.chunker
        # As the archiver cuts: pyfastcdc's average is avg_size + min_size.
        self._cdc = FastCDC(params.avg_size - params.min_size, min_size=params.min_size, max_size=params.max_size)
        self._min_size = params.min_size

    def compare(self, snapshot: Snapshot, subpath: str, directory: Path) -> TreeDiff:
        """How `directory` differs from the snapshot's `subpath` (a directory)."""
        diff = TreeDiff()
        node = find_node(self.repository, snapshot, subpath)
        if not directory.is_dir():
            diff.added.append(".")
            return diff
        assert node.subtree is not None
        self._walk(node.subtree, directory, "", diff)
        return diff

    def conflicts(self, snapshot: Snapshot, subpath: str, directory: Path) -> list[str]:
        """The files of `subpath` that `directory` holds with another type or content: what
        writing the snapshot there would overwrite. Missing and extra files are not conflicts."""
        found: list[str] = []
        pending = [(find_node(self.repository, snapshot, subpath).subtree, directory, "")]
        while pending:
            tree_id, folder, relative = pending.pop()
            for node in self.repository.load_tree(tree_id or ""):
                path, shown = folder / node.name, relative + node.name
                if not path.exists() and not path.is_symlink():
                    continue
                if node.type == NodeType.DIR:
                    if path.is_dir() and not path.is_symlink():
                        pending.append((node.subtree, path, shown + "/"))
                    else:
                        found.append(shown)
                elif node.type == NodeType.FILE:
                    if not path.is_file() or path.is_symlink() or self._content_ids(path) != node.content:
                        found.append(shown)
                elif node.type == NodeType.SYMLINK and (not path.is_symlink() or os.readlink(path) != node.target):
                    found.append(shown)
        return sorted(found)

    def _walk(self, tree_id: str, directory: Path, relative: str, diff: TreeDiff) -> None:
        nodes = self.repository.load_tree(tree_id)
        names = {node.name for node in nodes}
        with os.scandir(directory) as entries:
            diff.deleted += sorted(relative + entry.name for entry in entries if entry.name not in names)
        for node in nodes:
            path, shown = directory / node.name, relative + node.name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                diff.added.append(shown)
                continue
            difference = self._difference(node, path, info, diff)
            if difference:
                diff.changed.append(f"{shown} ({difference})")
            elif node.type == NodeType.DIR and node.subtree is not None:
                self._walk(node.subtree, path, shown + "/", diff)

    def _difference(self, node: Node, path: Path, info: os.stat_result, diff: TreeDiff) -> str:
        """What differs, first found; "" when nothing does."""
        found = _TYPES.get(stat.S_IFMT(info.st_mode))
        if found != node.type:
            return f"a {found.value if found else 'special file'}, not a {node.type.value}"
        if node.type == NodeType.SYMLINK:
            return "" if os.readlink(path) == node.target else "target"
        if stat.S_IMODE(info.st_mode) != node.mode:
            return f"mode {stat.S_IMODE(info.st_mode):o}, not {node.mode:o}"
        if self._owners and (info.st_uid, info.st_gid) != (node.uid, node.gid):
            return f"owner {info.st_uid}:{info.st_gid}, not {node.uid}:{node.gid}"
        if node.type != NodeType.FILE:
            return ""  # a directory's time is checked after its entries, by its own restore
        if info.st_size != node.size:
            return f"size {info.st_size}, not {node.size}"
        if info.st_mtime_ns != node.mtime_ns:
            return "modification time"
        if self.content:
            diff.files += 1
            diff.bytes += info.st_size
            if self._content_ids(path) != node.content:
                return "content"
        return ""

    def _content_ids(self, path: Path) -> list[str]:
        data = path.read_bytes() if path.stat().st_size <= 64 * 1024 * 1024 else None
        if data is not None:
            pieces = [data] if len(data) <= self._min_size else [bytes(c.data) for c in self._cdc.cut_buf(data)]
            return [self.repository.master.blob_id(piece).hex() for piece in pieces]
        with path.open("rb") as reader:
            return [self.repository.master.blob_id(bytes(c.data)).hex() for c in self._cdc.cut_stream(reader)]
