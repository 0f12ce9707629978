"""Restorer: make a directory identical to a snapshot (or to one of its sub-paths).

Files are written by a worker pool; each file's chunks are fetched with one ranged read per
run of adjacent blobs in a pack, verified, and all-zero chunks become holes (sparse files).
Directory metadata is set after their contents (post-order), so mtimes stay as recorded.
With `delete`, entries the snapshot does not have are removed from the target.
"""

from __future__ import annotations

import base64
import errno
import os
import shutil
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import BackupNotFound
from controller.repository.records import Node, NodeType, Snapshot
from controller.repository.repository import Repository

_SEGMENT_BYTES = 16 * 1024 * 1024  # a file larger than this is restored by several workers at once


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


class Restorer:
    def __init__(
        self, repository: Repository, workers: int = 4, progress: Callable[[RestoreProgress], None] | None = None
    ) -> None:
        self.repository = repository
        self.workers = workers
        self._progress_callback = progress
        self._progress = RestoreProgress()
        self._lock = threading.Lock()
        self._hardlinks: dict[tuple[int, int], tuple[Path, Future[None]]] = {}
        self._is_root = os.geteuid() == 0
        self._problems: list[str] = []

    def restore(self, snapshot: Snapshot, target: Path, subpath: str = "", delete: bool = False) -> RestoreResult:
        node = find_node(self.repository, snapshot, subpath)
        target.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="restore") as pool:
            if node.type == NodeType.DIR:
                assert node.subtree is not None
                pending = self._restore_dir_contents(node.subtree, target, delete, pool)
                for future in pending:
                    future.result()
                if subpath:
                    self._set_metadata(target, node)
            else:
                self._restore_entry(node, target / node.name, pool).result()
        return RestoreResult(self._progress.files, self._progress.bytes, self._problems)

    def _restore_dir_contents(
        self, tree_id: str, directory: Path, delete: bool, pool: ThreadPoolExecutor
    ) -> list[Future[None]]:
        """Restore a directory's entries; returns futures the caller must wait on."""
        nodes = self.repository.load_tree(tree_id)
        if delete:
            keep = {n.name for n in nodes}
            for existing in os.scandir(directory):
                if existing.name not in keep:
                    _remove(Path(existing.path))
        futures: list[Future[None]] = []
        directories: list[tuple[Node, Path, list[Future[None]]]] = []
        for node in nodes:
            path = directory / node.name
            if node.type == NodeType.DIR:
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    _remove(path)
                path.mkdir(exist_ok=True)
                assert node.subtree is not None
                inner = self._restore_dir_contents(node.subtree, path, delete, pool)
                directories.append((node, path, inner))
            else:
                futures.append(self._restore_entry(node, path, pool))
        for node, path, inner in directories:
            for future in inner:
                future.result()
            self._set_metadata(path, node)
        return futures

    def _restore_entry(self, node: Node, path: Path, pool: ThreadPoolExecutor) -> Future[None]:
        if node.type == NodeType.FILE:
            key = (node.device, node.inode)
            if node.links > 1 and node.inode:
                with self._lock:
                    first = self._hardlinks.get(key)
                if first is not None:
                    return pool.submit(self._link, first, node, path)
            future = self._start_file(node, path, pool)
            if node.links > 1 and node.inode:
                with self._lock:
                    self._hardlinks.setdefault(key, (path, future))
            return future
        done: Future[None] = Future()
        try:
            self._make_special(node, path)
            done.set_result(None)
        except OSError as err:
            done.set_exception(err)
        return done

    def _link(self, first: tuple[Path, Future[None]], node: Node, path: Path) -> None:
        first_path, first_done = first
        first_done.result()
        if path.exists() or path.is_symlink():
            _remove(path)
        os.link(first_path, path)

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

    def _start_file(self, node: Node, path: Path, pool: ThreadPoolExecutor) -> Future[None]:
        """Restore a file; large files are split into segments written by several workers.

        No file descriptor stays open between tasks, so a directory of many files cannot
        exhaust them; the last segment to finish truncates the file and sets its metadata.
        """
        segments = self._segments(node)
        if len(segments) <= 1:
            return pool.submit(self._write_whole, node, path, segments[0][1] if segments else [])
        os.close(_create(path))
        done: Future[None] = Future()
        remaining = [len(segments)]
        errors: list[BaseException] = []

        def segment_done(finished: Future[None]) -> None:
            error = finished.exception()
            with self._lock:
                if error is not None:
                    errors.append(error)
                remaining[0] -= 1
                last = remaining[0] == 0
            if not last:
                return
            try:
                if errors:
                    raise errors[0]
                self._finish_file(path, node)
                done.set_result(None)
            except BaseException as err:
                done.set_exception(err)

        for offset, blob_ids in segments:
            pool.submit(self._write_segment, path, offset, blob_ids).add_done_callback(segment_done)
        return done

    def _segments(self, node: Node) -> list[tuple[int, list[bytes]]]:
        """(file offset, blob ids) runs of about _SEGMENT_BYTES, from the index's sizes."""
        segments: list[tuple[int, list[bytes]]] = []
        offset, start, current = 0, 0, []  # type: int, int, list[bytes]
        for content in node.content:
            blob_id = bytes.fromhex(content)
            current.append(blob_id)
            offset += self.repository.locate(blob_id).raw_length
            if offset - start >= _SEGMENT_BYTES:
                segments.append((start, current))
                start, current = offset, []
        if current:
            segments.append((start, current))
        return segments

    def _write_whole(self, node: Node, path: Path, blob_ids: list[bytes]) -> None:
        """The common case, all through one descriptor: no path lookup after the open."""
        fd = _create(path)
        try:
            self._write_blobs(fd, 0, blob_ids)
            os.ftruncate(fd, node.size)
            self._set_metadata(fd, node)
        finally:
            os.close(fd)
        self._count_file()

    def _write_segment(self, path: Path, offset: int, blob_ids: list[bytes]) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            self._write_blobs(fd, offset, blob_ids)
        finally:
            os.close(fd)

    def _write_blobs(self, fd: int, offset: int, blob_ids: list[bytes]) -> None:
        for data in self.repository.load_blobs(blob_ids):
            if data[:1] == b"\0" and data[-1:] == b"\0" and data.count(0) == len(data):
                offset += len(data)  # leave a hole: sparse zero runs stay sparse
                continue
            os.pwrite(fd, data, offset)
            offset += len(data)
            with self._lock:
                self._progress.bytes += len(data)

    def _finish_file(self, path: Path, node: Node) -> None:
        os.truncate(path, node.size)  # also extends over a trailing hole
        self._set_metadata(path, node)
        self._count_file()

    def _count_file(self) -> None:
        with self._lock:
            self._progress.files += 1
            snapshot = RestoreProgress(self._progress.files, self._progress.bytes)
        if self._progress_callback is not None:
            self._progress_callback(snapshot)

    def _set_metadata(self, target: Path | int, node: Node) -> None:
        """Owner, mode, xattrs, then times (last: the others would move ctime, not mtime).
        `target` is a path (never followed if a symlink) or an open descriptor."""
        symlink = node.type == NodeType.SYMLINK
        follow = isinstance(target, int)
        if self._is_root:
            os.chown(target, node.uid, node.gid, follow_symlinks=follow)
        if not symlink:
            os.chmod(target, node.mode)
        for name, value in node.xattrs.items():
            try:
                os.setxattr(target, name, base64.b64decode(value), follow_symlinks=follow)
            except OSError as err:
                with self._lock:
                    self._problems.append(f"cannot set xattr {name} on {target}: {err.strerror}")
        os.utime(target, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=follow)


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
