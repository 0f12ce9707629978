"""Archiver: turn directories and byte streams into one snapshot.

The walk runs in the calling thread, on listings a scanner makes ahead of it (scanner.py:
every entry's lstat, and in a first backup the content of the small files, read natively
with the GIL released once a directory). It stores small files itself and hands larger
ones to a worker pool: a small file is mostly Python work under the GIL, so a worker would
only make the walk wait for the GIL after each of its system calls (the convoy effect),
which made a folder of 100,000 mail files 1.8 times slower to back up. A directory's tree blob
is written once its files are done, children before parents, and the
snapshot last — after the index — so nothing half-written is ever reachable. Incremental:
a file whose inode, size, mtime and ctime equal its node in the parent snapshot, with all
chunks present, is not read again. A file that changes while it is read is read once more,
and reported if it changes again.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from pyfastcdc import FastCDC

from controller.errors import BackupCorrupted, StorageFull
from controller.repository.blobs import BlobType
from controller.repository.records import Node, NodeType, Snapshot, Summary, encode_tree
from controller.repository.repository import Repository, SnapshotEntry
from controller.repository.scanner import Scanner
from controller.repository.writer import BlobWriter

_READ_ATTEMPTS = 2
_WHOLE_FILE_LIMIT = 4 * 1024 * 1024  # files up to this size are read in one call
_MAX_PENDING_DIRS = 2000  # bounds the memory held by directories waiting for their files
_INLINE_LIMIT = 64 * 1024  # files up to this size are read by the walk itself
_PROGRESS_INTERVAL = 0.1  # seconds between two progress reports
Slots = threading.BoundedSemaphore  # bounds the files queued for the workers


@dataclass(frozen=True)
class DirectorySource:
    name: str  # where it appears in the snapshot ("" for the root, "volumes/uploads" nests)
    path: Path
    skip: frozenset[Path] = frozenset()  # files and folders below `path` left out
    max_file_bytes: int | None = None  # larger files are left out, with a note naming them


@dataclass(frozen=True)
class StreamSource:
    name: str  # file path inside the snapshot, e.g. "dumps/db.sql"
    reader: BinaryIO  # read until EOF; its length need not be known


Source = DirectorySource | StreamSource


@dataclass
class Progress:
    files: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)


ProgressCallback = Callable[[Progress], None]
# A snapshot's warnings are notes (nothing is missing) or problems (something could not be read).
_NOTE_PARENT, _NOTE_SOCKET, _NOTE_LARGE = "parent tree", "skipped socket", "left out, over"


def snapshot_problems(snapshot: Snapshot) -> list[str]:
    """The warnings of `snapshot` that mean it is incomplete (not the notes)."""
    return [w for w in snapshot.warnings if not w.startswith((_NOTE_PARENT, _NOTE_SOCKET, _NOTE_LARGE))]


@dataclass(frozen=True)
class SourceStats:
    files: int
    bytes: int


@dataclass
class ArchiveResult:
    id: str
    snapshot: Snapshot
    problems: list[str]  # unreadable files and files that kept changing: the snapshot is incomplete
    sources: dict[str, SourceStats] = field(default_factory=dict)  # by source name


class _Job:
    """A file's content ids: read by a worker (the tree waits on `future`), or by the walk
    (`content`, or the `error` that reading it raised)."""

    def __init__(
        self,
        node: Node,
        future: Future[list[str]] | None = None,
        content: list[str] | None = None,
        error: OSError | None = None,
    ) -> None:
        self.node, self.future, self.content, self.error = node, future, content, error

    def done(self) -> bool:
        return self.future is None or self.future.done()

    def result(self) -> list[str]:
        if self.future is not None:
            return self.future.result()
        if self.error is not None:
            raise self.error
        return self.content or []

    def for_node(self, node: Node) -> _Job:
        """The same content for another name of the same file (a hard link)."""
        return _Job(node, self.future, self.content, self.error)


@dataclass
class _PendingDir:
    """A walked directory whose tree waits for its files (and, before it, its subdirectories)."""

    node: Node
    shown: str
    nodes: list[Node]
    jobs: list[_Job]


class Archiver:
    def __init__(
        self,
        repository: Repository,
        *,
        parent: SnapshotEntry | None = None,
        compression: str = "auto",
        workers: int | None = None,
        uploads: int = 2,
        progress: ProgressCallback | None = None,
        after_streams: Callable[[], None] | None = None,
    ) -> None:
        """`uploads`: packs stored at once; raise it for object stores far away (latency).

        Streams (database dumps) are archived before any directory; `after_streams` runs
        between the two, which is where an app is paused or stopped for a consistent copy.
        """
        self.repository = repository
        self.uploads = uploads
        self.parent = parent
        self.workers = workers or max(2, os.cpu_count() or 2)
        self.compression = compression
        self._progress_callback = progress
        self._progress = Progress()
        self._lock = threading.Lock()
        self._problems: list[str] = []  # the snapshot is incomplete because of these
        self._notes: list[str] = []  # worth recording, not a failure (skipped sockets)
        self._walking = DirectorySource("", Path("/"))  # the directory source being walked
        self._skip: frozenset[str] = frozenset()  # its `skip`, as the walk's path strings
        self._scanner: Scanner  # lists its directories ahead of the walk
        self._summary = Summary()
        self._hardlinks: dict[tuple[int, int], _Job] = {}
        self._reported = 0.0  # when progress was last reported
        self._pending: deque[_PendingDir] = deque()
        self._local = threading.local()
        self._after_streams = after_streams
        self._streamed: dict[int, Node] = {}  # id(StreamSource) → its archived node
        self._source_stats: dict[str, SourceStats] = {}

    def _cdc(self) -> FastCDC:
        found: FastCDC | None = getattr(self._local, "cdc", None)
        if found is None:
            params = self.repository.config.chunker
            # pyfastcdc's average is avg_size + min_size (cut-point skipping), hence the subtraction.
            found = FastCDC(params.avg_size - params.min_size, min_size=params.min_size, max_size=params.max_size)
            self._local.cdc = found
        return found

    def run(self, sources: Sequence[Source], tags: dict[str, str], hostname: str, time_rfc3339: str) -> ArchiveResult:
        """Archive `sources` into a new snapshot; raises on storage errors (nothing is committed)."""
        started = time.monotonic()
        self._check_sources(sources)
        writer = self.repository.blob_writer(self.compression, self.uploads)
        snapshots_before = self.repository.snapshot_keys()
        slots = Slots(self.workers * 4)  # bounds queued work, hence memory
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="archive")
        try:
            root = self._archive_sources(sources, writer, pool, slots, time_rfc3339)
            writer.finish()
        except StorageFull as full:
            # A full disk must not stay full: what this backup wrote goes, when nobody can
            # use it. Other failures keep their checkpoints, so the next run resumes.
            pool.shutdown(wait=True, cancel_futures=True)
            writer.abort()
            if self.repository.discard_unused(writer.saved, snapshots_before):
                raise StorageFull(f"{full}; the {len(writer.saved)} object(s) this backup wrote were removed") from None
            raise
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.abort()
            raise
        pool.shutdown(wait=True)
        self._summary.bytes_added = writer.bytes_added
        self._summary.blobs_added = writer.blobs_added
        self._summary.duration_seconds = round(time.monotonic() - started, 3)
        snapshot = Snapshot(
            time=time_rfc3339,
            tree=root,
            hostname=hostname,
            tags=tags,
            paths=[s.name for s in sources],
            parent=self.parent.id if self.parent else None,
            summary=self._summary,
            warnings=[*self._problems, *self._notes],
        )
        snapshot_id = self.repository.save_snapshot(snapshot)
        return ArchiveResult(snapshot_id, snapshot, list(self._problems), dict(self._source_stats))

    @staticmethod
    def _check_sources(sources: Sequence[Source]) -> None:
        names = [s.name for s in sources]
        if "" in names and len(names) > 1:
            raise ValueError("a source at the snapshot root must be the only source")
        if len(set(names)) != len(names):
            raise ValueError("two sources have the same name in the snapshot")

    # Building the root

    def _archive_sources(
        self,
        sources: Sequence[Source],
        writer: BlobWriter,
        pool: ThreadPoolExecutor,
        slots: Slots,
        when: str,
    ) -> str:
        mtime_ns = _rfc3339_to_ns(when)
        for source in sources:
            if isinstance(source, StreamSource):
                with self._counting(source.name):
                    self._streamed[id(source)] = self._archive_stream(source, source.name.rsplit("/", 1)[-1], writer)
        if self._after_streams is not None:
            self._after_streams()
        if len(sources) == 1 and sources[0].name == "" and isinstance(sources[0], DirectorySource):
            node = self._walk_source(sources[0], [], writer, pool, slots)
            assert node.subtree is not None
            return node.subtree
        layout: dict[str, object] = {}
        for source in sources:
            parts = [p for p in source.name.split("/") if p]
            folder = layout
            for part in parts[:-1]:
                folder = folder.setdefault(part, {})  # type: ignore[assignment]
            folder[parts[-1]] = source
        return self._materialise(layout, [], writer, pool, slots, mtime_ns)

    def _materialise(
        self,
        layout: dict[str, object],
        path: list[str],
        writer: BlobWriter,
        pool: ThreadPoolExecutor,
        slots: Slots,
        mtime_ns: int,
    ) -> str:
        nodes: list[Node] = []
        for name, item in sorted(layout.items()):
            if isinstance(item, dict):
                subtree = self._materialise(item, [*path, name], writer, pool, slots, mtime_ns)
                nodes.append(Node(name, NodeType.DIR, mode=0o755, mtime_ns=mtime_ns, subtree=subtree))
                self._summary.dirs += 1
            elif isinstance(item, DirectorySource):
                with self._counting(item.name):
                    node = self._walk_source(item, [*path, name], writer, pool, slots)
                node.name = name
                nodes.append(node)
            else:
                assert isinstance(item, StreamSource)
                streamed = self._streamed[id(item)]
                streamed.mtime_ns = mtime_ns
                nodes.append(streamed)
        return self._save_tree(nodes, writer)

    def _walk_source(
        self, source: DirectorySource, at: list[str], writer: BlobWriter, pool: ThreadPoolExecutor, slots: Slots
    ) -> Node:
        """Walk a directory source that appears at `at` in the snapshot, with a scanner
        listing its directories ahead. The scan reads small files' content only in a backup
        without a parent: with one, most files are unchanged and need no read."""
        self._walking, self._skip = source, frozenset(str(p) for p in source.skip)
        root, parent = str(source.path), self._parent_nodes(at)
        scanner = Scanner(
            root,
            self._skip,
            _INLINE_LIMIT,
            read_content=self.parent is None,
            frame_level=writer.compression_level,
            frame_limit=self.repository.config.chunker.min_size,  # contents of one chunk
        )
        with scanner as self._scanner:
            node = self._walk_dir(root, "/".join(at), parent, writer, pool, slots)
            self._finish_directories(writer, block=True)
        return node

    def _parent_nodes(self, path: list[str]) -> dict[str, Node] | None:
        """The parent snapshot's entries of the directory at `path`, if it has one."""
        if self.parent is None:
            return None
        listing = self._parent_listing(self.parent.snapshot.tree)
        for part in path:
            node = listing.get(part) if listing is not None else None
            if node is None or node.type != NodeType.DIR or node.subtree is None:
                return None
            listing = self._parent_listing(node.subtree)
        return listing

    def _parent_listing(self, tree_id: str) -> dict[str, Node] | None:
        """A parent directory's nodes by name; None when the parent's tree is unreadable,
        so that a damaged parent costs a full read, never a failed backup. The walk reads
        each parent tree once, so none is kept in the repository's LRU: kept, a day's
        changes to a million files filled its 32 MiB where 300,000 filled half of it."""
        try:
            return {n.name: n for n in self.repository.load_tree(tree_id, remember=False)}
        except BackupCorrupted:
            self._notes.append(f"{_NOTE_PARENT} {tree_id[:16]} unreadable; files below it were read in full")
            return None

    # Directories

    def _walk_dir(
        self,
        path: str,
        shown: str,
        parent: dict[str, Node] | None,
        writer: BlobWriter,
        pool: ThreadPoolExecutor,
        slots: Slots,
    ) -> Node:
        info = os.lstat(path)
        node = _node_from_stat(os.path.basename(path), NodeType.DIR, info, path)
        nodes: list[Node] = []
        jobs: list[_Job] = []
        listing = self._scanner.next(path)
        if listing.error is not None:
            self._problem(f"unreadable directory {shown or path}: {listing.error.strerror}")
        subdirectories = list(listing.subdirectories(self._skip))
        for entry in listing.drain():  # paths are strings here: a Path per file costs more than its stat
            child_path = listing.path_of(entry.name)
            child_shown = f"{shown}/{entry.name}" if shown else entry.name
            child = entry.info
            if self._skip and child_path in self._skip:
                continue
            if child is None:
                self._problem(f"cannot stat {child_shown}: {os.strerror(entry.error)}")
                continue
            mode = child.st_mode
            if stat.S_ISDIR(mode) or (stat.S_ISREG(mode) and self._too_large(child, child_shown)):
                continue  # a folder is walked below, after the folder's files
            if stat.S_ISREG(mode):
                file_node = _node_from_stat(entry.name, NodeType.FILE, child, child_path, entry.maybe_xattrs)
                reused = self._reuse(file_node, parent.pop(entry.name, None) if parent else None)
                if reused:
                    nodes.append(file_node)
                else:
                    content = (
                        (entry.content, listing.framed.pop(entry.name, None)) if entry.content is not None else None
                    )
                    jobs.append(self._file_job(file_node, child_path, child_shown, child, pool, slots, writer, content))
            elif stat.S_ISLNK(mode):
                link = _node_from_stat(entry.name, NodeType.SYMLINK, child, child_path, entry.maybe_xattrs)
                link.target = os.fsdecode(os.readlink(child_path))
                nodes.append(link)
            elif stat.S_ISFIFO(mode):
                nodes.append(_node_from_stat(entry.name, NodeType.FIFO, child, child_path, entry.maybe_xattrs))
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = NodeType.CHARDEV if stat.S_ISCHR(mode) else NodeType.BLOCKDEV
                device = _node_from_stat(entry.name, kind, child, child_path, entry.maybe_xattrs)
                device.rdev = child.st_rdev
                nodes.append(device)
            else:
                with self._lock:
                    self._notes.append(f"{_NOTE_SOCKET} {child_shown}")
        # Below its own files: the workers start on a folder's big files (a volume's
        # database, a disk image) before the walk descends, not at the end of the backup
        # where one worker would read them alone.
        for entry, child_path in subdirectories:
            sub_parent = None
            if parent is not None and (old := parent.get(entry.name)) and old.subtree:
                sub_parent = self._parent_listing(old.subtree)
            child_shown = f"{shown}/{entry.name}" if shown else entry.name
            nodes.append(self._walk_dir(child_path, child_shown, sub_parent, writer, pool, slots))
        # The tree is written later, when its files are done: waiting here would stall the
        # walk at every directory and leave the workers idle.
        self._pending.append(_PendingDir(node, shown, nodes, jobs))
        self._finish_directories(writer, block=len(self._pending) > _MAX_PENDING_DIRS)
        return node

    def _finish_directories(self, writer: BlobWriter, block: bool) -> None:
        """Write the trees of pending directories, oldest first (children precede parents).

        Without `block`, stop at the first directory whose files are still being read.
        """
        while self._pending:
            pending = self._pending[0]
            if not block and not all(job.done() for job in pending.jobs):
                return
            self._pending.popleft()
            for job in pending.jobs:
                try:
                    job.node.content = job.result()
                    pending.nodes.append(job.node)
                except OSError as err:
                    self._problem(f"unreadable file {pending.shown}/{job.node.name}: {err.strerror}")
            pending.node.subtree = self._save_tree(pending.nodes, writer)
            with self._lock:
                self._summary.dirs += 1

    def _reuse(self, node: Node, old: Node | None) -> bool:
        if old is None or old.type != NodeType.FILE:
            return False
        same = (old.inode, old.size, old.mtime_ns, old.ctime_ns) == (
            node.inode,
            node.size,
            node.mtime_ns,
            node.ctime_ns,
        )
        if not same or not all(bytes.fromhex(c) in self.repository.index for c in old.content):
            return False
        node.content = old.content  # `old` was taken out of the walk's own parent listing
        with self._lock:
            self._summary.files += 1
            self._summary.bytes += node.size
            self._progress.files += 1
        return True

    def _too_large(self, info: os.stat_result, shown: str) -> bool:
        limit = self._walking.max_file_bytes
        if limit is None or info.st_size <= limit:
            return False
        with self._lock:
            self._notes.append(f"{_NOTE_LARGE} {limit} bytes: {shown} ({info.st_size} bytes)")
        return True

    def _save_tree(self, nodes: list[Node], writer: BlobWriter) -> str:
        raw = memoryview(encode_tree(nodes))  # no bytes copy of a big folder's text
        tree_id = self.repository.master.blob_id(raw)
        writer.add(BlobType.TREE, tree_id, raw)
        return tree_id.hex()

    # Files and streams

    def _file_job(
        self,
        node: Node,
        path: str,
        shown: str,
        info: os.stat_result,
        pool: ThreadPoolExecutor,
        slots: Slots,
        writer: BlobWriter,
        content: tuple[bytes, bytes | None] | None = None,
    ) -> _Job:
        """Store a small file now (its `content` when the scan read it, with its frame when
        the scan made it), or hand a larger one to a worker."""
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self._hardlinks:
            return self._hardlinks[key].for_node(node)
        if content is not None:
            data, framed = content
            ids, size = self._store(self._cut(memoryview(data)), writer, shown, framed)
            job = _Job(node, content=ids)
            self._count_file(size)
        elif info.st_size <= _INLINE_LIMIT:
            try:
                job = _Job(node, content=self._read_file(path, shown, writer, info))
            except OSError as err:
                job = _Job(node, error=err)
        else:
            slots.acquire()

            def read() -> list[str]:
                try:
                    return self._read_file(path, shown, writer, info)
                finally:
                    slots.release()

            job = _Job(node, future=pool.submit(read))
        if info.st_nlink > 1:
            self._hardlinks[key] = job
        return job

    def _read_file(self, path: str, shown: str, writer: BlobWriter, walked: os.stat_result) -> list[str]:
        """`walked`: the file's lstat from the walk, what the read is compared with first (a
        change since then, as during the read, means one more read)."""
        before = walked
        for attempt in range(_READ_ATTEMPTS):
            fd = os.open(path, os.O_RDONLY)
            try:
                if attempt:
                    before = os.fstat(fd)
                if before.st_size <= _WHOLE_FILE_LIMIT:
                    ids, size = self._store(self._cut(self._read_whole(fd, before.st_size)), writer, shown)
                else:
                    with open(fd, "rb", buffering=0, closefd=False) as handle:
                        ids, size = self._chunk(handle, writer, shown)
                after = os.fstat(fd)
            finally:
                os.close(fd)
            unchanged = (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (
                after.st_size,
                after.st_mtime_ns,
                after.st_ctime_ns,
            ) and size == after.st_size
            if unchanged:
                break
            if attempt == _READ_ATTEMPTS - 1:
                self._problem(f"file changed while being read: {shown} (stored as last read)")
        self._count_file(size)
        return ids

    def _count_file(self, size: int) -> None:
        with self._lock:
            self._summary.files += 1
            self._summary.bytes += size
            self._progress.files += 1

    def _read_whole(self, fd: int, expected: int) -> memoryview:
        """Everything up to the end of the file (which may have grown since it was measured),
        into this thread's read buffer, kept for its next file: a fresh buffer for every
        file cost the kernel a zeroed page for every 4 KiB read. A read shorter than asked
        for is the end: a file of the expected size costs one call. The view is valid
        until this thread's next read."""
        buffer: bytearray = getattr(self._local, "buffer", None) or bytearray()
        size = 0
        while True:
            want = expected + 1 - size if size <= expected else 64 * 1024
            if len(buffer) < size + want:
                grown = bytearray(size + want)  # not resized in place: a chunk's view may live on
                grown[:size] = memoryview(buffer)[:size]
                buffer = self._local.buffer = grown
            read = os.readv(fd, [memoryview(buffer)[size : size + want]])
            size += read
            if read < want:
                return memoryview(buffer)[:size]

    def _cut(self, data: memoryview) -> Iterable[bytes | memoryview]:
        """The chunks of content read whole (cut_stream costs ~1 ms to set up)."""
        if len(data) <= self.repository.config.chunker.min_size:
            return [data]
        return (c.data for c in self._cdc().cut_buf(data))

    def _chunk(self, reader: BinaryIO, writer: BlobWriter, shown: str) -> tuple[list[str], int]:
        """Chunk, hash and store a stream or a large file; (content ids, bytes read)."""
        return self._store((c.data for c in self._cdc().cut_stream(reader)), writer, shown)

    def _store(
        self, pieces: Iterable[bytes | memoryview], writer: BlobWriter, shown: str, framed: bytes | None = None
    ) -> tuple[list[str], int]:
        """Hash and store the chunks; (content ids, bytes). A chunk may be a view into the
        chunker's buffer, which its next chunk overwrites: it is sealed (copied) before
        that, so it is not copied out first (a copy of every chunk of every large file).
        `framed`: the frame of a content that is one chunk, made by the scan."""
        ids: list[str] = []
        size = 0
        for chunk in pieces:
            blob_id = self.repository.master.blob_id(chunk)
            writer.add(BlobType.DATA, blob_id, chunk, framed)
            ids.append(blob_id.hex())
            size += len(chunk)
            self._advance(len(chunk), writer, shown)
        return ids, size

    def _archive_stream(self, source: StreamSource, name: str, writer: BlobWriter) -> Node:
        ids, size = self._chunk(source.reader, writer, source.name)
        with self._lock:
            self._summary.files += 1
            self._summary.bytes += size
        return Node(name, NodeType.FILE, mode=0o600, size=size, content=ids)

    @contextlib.contextmanager
    def _counting(self, name: str) -> Iterator[None]:
        """Record the files and bytes one source adds to the snapshot (sources run one at a time)."""
        files, size = self._summary.files, self._summary.bytes
        yield
        self._source_stats[name] = SourceStats(self._summary.files - files, self._summary.bytes - size)

    # Reporting

    def _advance(self, read: int, writer: BlobWriter, current: str) -> None:
        """Count what was read; report progress at most every _PROGRESS_INTERVAL seconds (a
        report per chunk of a small file cost more than reading it)."""
        now = time.monotonic()
        with self._lock:
            self._summary.bytes_read += read
            self._progress.bytes_read += read
            due = self._progress_callback is not None and now - self._reported >= _PROGRESS_INTERVAL
            if not due:
                return
            self._reported = now
            self._progress.bytes_added = writer.bytes_added
            self._progress.current = current
            snapshot = Progress(**vars(self._progress))
        if self._progress_callback is not None:
            self._progress_callback(snapshot)

    def _problem(self, message: str) -> None:
        with self._lock:
            self._problems.append(message)


def _node_from_stat(name: str, type_: NodeType, info: os.stat_result, path: str, maybe_xattrs: bool = True) -> Node:
    """`maybe_xattrs` False: the scan found the entry has no extended attributes."""
    return Node(
        name=name,
        type=type_,
        mode=stat.S_IMODE(info.st_mode),
        uid=info.st_uid,
        gid=info.st_gid,
        mtime_ns=info.st_mtime_ns,
        ctime_ns=info.st_ctime_ns,
        inode=info.st_ino,
        device=info.st_dev,
        links=info.st_nlink,
        size=info.st_size if type_ == NodeType.FILE else 0,
        xattrs=_xattrs(path) if maybe_xattrs else {},
    )


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    values = {}
    for name in names:
        try:
            values[name] = base64.b64encode(os.getxattr(path, name, follow_symlinks=False)).decode()
        except OSError:
            continue
    return values


def _rfc3339_to_ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1_000_000_000)
