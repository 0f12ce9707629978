"""Restorer: make a directory identical to a snapshot (or to one of its sub-paths).

Two phases, as in restic, taken in batches of the walk so that memory does not grow with
the number of files. First the walk creates directories, links and special files, and
empties every regular file that already stands in the target (the others are made by
their first write), until the batch holds `batch_blobs` blobs. Then the batch's content
is restored pack by pack: each needed region of a
pack is read once (one ranged GET on S3), its blobs are verified and written to every
file and offset that uses them, and all-zero chunks become holes (sparse files). A file
gets its size and metadata through the descriptor its last blob was written with (a
small file: one open, no path looked up again); directories get theirs last, deepest
first, so their mtimes stay as recorded. With `delete`, entries the snapshot does
not have are removed from the target.
"""

from __future__ import annotations

import base64
import errno
import os
import shutil
import stat
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import BackupNotFound
from controller.repository._filewrite import write_files
from controller.repository.index import BlobLocation
from controller.repository.records import Node, NodeType, Snapshot
from controller.repository.repository import Repository
from controller.repository.writer import pack_key

_MAX_GAP = 1024 * 1024  # unneeded bytes worth reading to avoid another request
# Bounds each worker's buffer, and splits a pack into tasks for several workers: a batch of
# small files may need no more than one or two packs (a region per pack held 4 x 16 MiB).
_MAX_REGION = 4 * 1024 * 1024
# Blobs planned at once: bounds the plan's memory, some 2 KB a small file (300,000 small
# files peaked at 177 MiB with batches of 50,000, 111 with 20,000), not the reads (ranged).
_BATCH_BLOBS = 20_000
# Plaintext of one-blob files a worker holds before it writes them in one native call.
_WHOLE_BATCH_BYTES = 256 * 1024


@dataclass
class RestoreProgress:
    files: int = 0
    bytes: int = 0


@dataclass
class RestoreResult:
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def find_node(repository: Repository, snapshot: Snapshot, subpath: str) -> Node:
    """The node at `subpath` ("" is the root, as a directory node)."""
    node = Node("", NodeType.DIR, mode=0o755, subtree=snapshot.tree)
    for part in [p for p in subpath.split("/") if p]:
        if node.type != NodeType.DIR or node.subtree is None:
            raise BackupNotFound(f"{subpath!r} is not in the snapshot")
        children = {n.name: n for n in repository.load_tree(node.subtree)}
        if part not in children:
            raise BackupNotFound(f"{subpath!r} is not in the snapshot")
        node = children[part]
    return node


@dataclass(slots=True)
class _File:
    path: Path
    node: Node
    remaining: int  # blobs still to write
    existed: bool = False  # stood in the target: emptied by the walk, never created again
    end: int = 0  # where the bytes written so far end: the file's size until it is finished


@dataclass(frozen=True)
class _Use:
    """One blob of one pack, and every place it must be written."""

    blob_id: bytes
    location: BlobLocation
    targets: tuple[tuple[_File, int], ...]  # (file, offset in the file)


class Restorer:
    def __init__(
        self,
        repository: Repository,
        workers: int = 4,
        progress: Callable[[RestoreProgress], None] | None = None,
        batch_blobs: int = _BATCH_BLOBS,
    ) -> None:
        self.repository = repository
        self.workers = workers
        self.batch_blobs = batch_blobs
        self._progress_callback = progress
        self._progress = RestoreProgress()
        self._lock = threading.Lock()
        self._is_root = os.geteuid() == 0
        self._problems: list[str] = []
        self._directories: list[tuple[Path, Node]] = []  # post-order: children before parents
        self._links: list[tuple[Path, Path]] = []  # (first name of a hard-linked file, another name)
        self._first_names: dict[tuple[int, int], Path] = {}

    def restore(self, snapshot: Snapshot, target: Path, subpath: str = "", delete: bool = False) -> RestoreResult:
        node = find_node(self.repository, snapshot, subpath)
        target.mkdir(parents=True, exist_ok=True)
        if node.type == NodeType.DIR:
            assert node.subtree is not None
            files = self._walk(node.subtree, target, delete)
        else:
            files = self._place(node, target / node.name, os.path.lexists(target / node.name))
        batch: list[_File] = []
        blobs = 0
        for file in files:
            batch.append(file)
            blobs += len(file.node.content)
            if blobs >= self.batch_blobs:
                self._restore_content(batch)
                batch, blobs = [], 0
        self._restore_content(batch)
        if node.type == NodeType.DIR and subpath:
            self._directories.append((target, node))
        for first, other in self._links:
            if other.exists() or other.is_symlink():
                _remove(other)
            os.link(first, other)
        for path, directory in self._directories:
            self._set_metadata(path, directory)
        return RestoreResult(self._progress.files, self._progress.bytes, self._problems)

    # Phase one: the tree

    def _walk(self, tree_id: str, directory: Path, delete: bool) -> Iterator[_File]:
        """Make the tree's directories and special files as it goes; yield its regular files."""
        nodes = self.repository.load_tree(tree_id, remember=False)  # each tree is walked once
        present = {entry.name for entry in os.scandir(directory)}
        if delete:
            keep = {n.name for n in nodes}
            for name in present - keep:
                _remove(directory / name)
        for node in nodes:
            path = directory / node.name
            if node.type == NodeType.DIR:
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    _remove(path)
                path.mkdir(exist_ok=True)
                assert node.subtree is not None
                yield from self._walk(node.subtree, path, delete)
                self._directories.append((path, node))
            else:
                yield from self._place(node, path, node.name in present)

    def _place(self, node: Node, path: Path, existed: bool) -> Iterator[_File]:
        """Yield the file whose content is to be restored at `path`, if any. `existed`:
        something stands at `path` already."""
        if node.type != NodeType.FILE:
            self._make_special(node, path)
            return
        key = (node.device, node.inode)
        if node.links > 1 and node.inode:
            first = self._first_names.get(key)
            if first is not None:
                self._links.append((first, path))
                return
            self._first_names[key] = path
        if existed:  # whatever stands there is replaced: a file emptied, a symlink or directory removed
            os.close(_create(path))
        yield _File(path, node, len(node.content), existed)

    # Phase two: the content, pack by pack

    def _restore_content(self, files: list[_File]) -> None:
        uses: dict[bytes, dict[bytes, list[tuple[_File, int]]]] = defaultdict(dict)
        locations: dict[bytes, BlobLocation] = {}
        for file in files:
            if not file.node.content:
                self._finish(file)
                continue
            offset = 0
            for content in file.node.content:
                blob_id = bytes.fromhex(content)
                location = locations.get(blob_id) or self.repository.locate(blob_id)
                locations[blob_id] = location
                uses[location.pack].setdefault(blob_id, []).append((file, offset))
                offset += location.raw_length
        regions = [
            region
            for blobs in uses.values()
            for region in _regions(
                sorted((_Use(b, locations[b], tuple(t)) for b, t in blobs.items()), key=lambda u: u.location.offset)
            )
        ]
        regions.sort(key=len, reverse=True)  # big regions first: the pool ends with short tasks
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="restore") as pool:
            for finished in [pool.submit(self._restore_region, region) for region in regions]:
                finished.result()

    def _restore_region(self, region: list[_Use]) -> None:
        """Read one region of a pack and write its blobs everywhere they are used."""
        first, last = region[0].location, region[-1].location
        data = memoryview(
            self.repository.storage.load(pack_key(first.pack), first.offset, last.offset + last.length - first.offset)
        )
        whole: list[tuple[_File, bytes]] = []  # one-blob files, written by one native call
        held = 0
        for use in region:
            relative = use.location.offset - first.offset
            plaintext = self.repository.open_sealed(use.blob_id, data[relative : relative + use.location.length])
            for file, offset in use.targets:
                if len(file.node.content) == 1 and not file.node.xattrs:
                    whole.append((file, plaintext))
                    held += len(plaintext)
                else:
                    self._write(file, offset, plaintext)
            if held >= _WHOLE_BATCH_BYTES:
                self._write_whole(whole)
                whole, held = [], 0
        self._write_whole(whole)

    def _write_whole(self, batch: list[tuple[_File, bytes]]) -> None:
        """Write, size and finish files of one blob each, every system call of the batch
        made in one native call; a file that fails there is made again by _write, which
        raises or reports as for any other file."""
        failed = set(
            write_files(
                [
                    (
                        os.fsencode(f.path),
                        data,
                        not f.existed,
                        f.node.size,
                        f.node.mode,
                        f.node.uid,
                        f.node.gid,
                        f.node.mtime_ns,
                    )
                    for f, data in batch
                ],
                self._is_root,
            )
        )
        finished_bytes = 0
        for number, (file, data) in enumerate(batch):
            if number in failed:
                self._write(file, 0, data)
            else:
                file.remaining = 0
                finished_bytes += len(data)
        self._count_finished(len(batch) - len(failed), finished_bytes)

    def _write(self, file: _File, offset: int, data: bytes) -> None:
        fd = os.open(file.path, os.O_WRONLY | os.O_NOFOLLOW | (0 if file.existed else os.O_CREAT), 0o600)
        try:
            written = not (data[:1] == b"\0" and data[-1:] == b"\0" and data.count(0) == len(data))
            if written:  # zeros stay holes
                os.pwrite(fd, data, offset)
            with self._lock:
                if written:
                    file.end = max(file.end, offset + len(data))
                self._progress.bytes += len(data)
                file.remaining -= 1
                done = file.remaining == 0
            if done:
                self._finish(file, fd)
        finally:
            os.close(fd)

    def _finish(self, file: _File, fd: int | None = None) -> None:
        """Size and metadata through `fd` (an empty file: created here)."""
        if fd is None:
            fd = _create(file.path)
            try:
                self._finish(file, fd)
            finally:
                os.close(fd)
            return
        if file.end != file.node.size:  # a trailing hole (the file is empty before its writes)
            os.ftruncate(fd, file.node.size)
        self._set_file_metadata(fd, file)
        self._count_finished(1, 0)

    def _count_finished(self, files: int, written: int) -> None:
        if not files and not written:
            return
        with self._lock:
            self._progress.files += files
            self._progress.bytes += written
            snapshot = RestoreProgress(self._progress.files, self._progress.bytes)
        if self._progress_callback is not None:
            self._progress_callback(snapshot)

    def _make_special(self, node: Node, path: Path) -> None:
        if path.exists() or path.is_symlink():
            _remove(path)
        if node.type == NodeType.SYMLINK:
            assert node.target is not None
            os.symlink(node.target, path)
        elif node.type == NodeType.FIFO:
            os.mkfifo(path, node.mode)
        elif self._is_root:
            kind = stat.S_IFCHR if node.type == NodeType.CHARDEV else stat.S_IFBLK
            os.mknod(path, node.mode | kind, node.rdev)
        else:
            with self._lock:
                self._problems.append(f"cannot create device {path} without root")
            return
        self._set_metadata(path, node)

    def _set_file_metadata(self, fd: int, file: _File) -> None:
        """_set_metadata through an open file."""
        node = file.node
        if self._is_root:
            os.chown(fd, node.uid, node.gid)
        os.chmod(fd, node.mode)
        for name, value in node.xattrs.items():
            try:
                os.setxattr(fd, name, base64.b64decode(value))
            except OSError as err:
                with self._lock:
                    self._problems.append(f"cannot set xattr {name} on {file.path}: {err.strerror}")
        os.utime(fd, ns=(node.mtime_ns, node.mtime_ns))

    def _set_metadata(self, path: Path, node: Node) -> None:
        """Owner, mode, xattrs, then times (last: the others would move ctime, not mtime).
        A symlink's own metadata is set, never its target's."""
        if self._is_root:
            os.chown(path, node.uid, node.gid, follow_symlinks=False)
        if node.type != NodeType.SYMLINK:
            os.chmod(path, node.mode)
        for name, value in node.xattrs.items():
            try:
                os.setxattr(path, name, base64.b64decode(value), follow_symlinks=False)
            except OSError as err:
                with self._lock:
                    self._problems.append(f"cannot set xattr {name} on {path}: {err.strerror}")
        os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)


def _regions(plan: list[_Use]) -> Iterator[list[_Use]]:
    """Split a pack's uses (by offset) into regions each read with one request: blobs closer
    than _MAX_GAP share a read, and no region exceeds _MAX_REGION."""
    start = 0
    while start < len(plan):
        end = start + 1
        region_start = plan[start].location.offset
        while end < len(plan):
            previous, following = plan[end - 1].location, plan[end].location
            gap = following.offset - (previous.offset + previous.length)
            if gap > _MAX_GAP or following.offset + following.length - region_start > _MAX_REGION:
                break
            end += 1
        yield plan[start:end]
        start = end


def _create(path: Path) -> int:
    """Open `path` for writing, empty; whatever stood there (a symlink, a directory) is replaced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    try:
        return os.open(path, flags, 0o600)
    except (IsADirectoryError, OSError) as err:
        if not isinstance(err, IsADirectoryError) and err.errno not in (errno.ELOOP, errno.ETXTBSY):
            raise
    _remove(path)
    return os.open(path, flags, 0o600)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
