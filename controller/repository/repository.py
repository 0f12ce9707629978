"""Repository: open or create one on a Storage, read blobs, and keep snapshots.

Everything that touches the format's objects by name lives here or in the modules it
uses (pack, index, keys); the archiver, restorer, checker and pruner work through it.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.errors import BackupCorrupted, BackupNotFound, ObjectNotFound, RepositoryError
from controller.repository.blobs import BlobDamaged, BlobType, open_blob
from controller.repository.crypto import AuthenticationFailed, MasterKey, content_hash
from controller.repository.heap import release_free_heap
from controller.repository.index import BlobLocation, Index, IndexDamaged
from controller.repository.keys import open_master_key, write_key_file
from controller.repository.locks import Lease, list_locks
from controller.repository.object_cache import ObjectCache, save_and_keep
from controller.repository.records import ChunkerParams, Node, RepositoryConfig, Snapshot, decode_tree
from controller.repository.writer import BlobWriter, pack_key
from controller.storage.base import Storage

FORMAT_VERSION = 1
CONFIG_AAD = b"lifeboat config v1"
SNAPSHOT_AAD = b"lifeboat snapshot v1"
COMPRESSION_LEVELS = {"off": 0, "auto": 1, "max": 12}
_MAX_RANGED_READ = 16 * 1024 * 1024


@dataclass(frozen=True)
class SnapshotEntry:
    id: str
    snapshot: Snapshot


class BlobCache:
    """A small LRU of plaintext blobs by id, bounded in bytes (trees and repeated chunks)."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._size, self._max = 0, max_bytes
        self._lock = threading.Lock()

    def get(self, blob_id: bytes) -> bytes | None:
        with self._lock:
            found = self._items.get(blob_id)
            if found is not None:
                self._items.move_to_end(blob_id)
            return found

    def put(self, blob_id: bytes, data: bytes) -> None:
        if len(data) > self._max // 4:
            return
        with self._lock:
            if blob_id in self._items:
                return
            self._items[blob_id] = data
            self._size += len(data)
            while self._size > self._max:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class Repository:
    def __init__(
        self,
        storage: Storage,
        master: MasterKey,
        config: RepositoryConfig,
        key_id: str,
        objects: ObjectCache | None = None,
    ) -> None:
        """`objects`: the local copy of snapshots, index files and tree packs (None: every
        read goes to the storage). `open` uses the one the environment configures."""
        self.storage, self.master, self.config, self.key_id = storage, master, config, key_id
        self.index = Index()
        self.lease: Lease | None = None  # the lock this process holds, checked before every commit
        self.index_problems: list[str] = []
        self._index_loaded = False
        self.cache = BlobCache()
        self.objects = objects

    # Opening

    @classmethod
    def init(
        cls,
        storage: Storage,
        passphrase: bytes,
        now: datetime,
        host: str,
        user: str,
        chunker: ChunkerParams | None = None,
        pack_size: int = 16 * 1024 * 1024,
    ) -> Repository:
        """Create a repository; refused if the storage already holds one."""
        if any(True for _ in storage.list("keys/")) or _exists(storage, "config"):
            raise RepositoryError(f"{storage.describe()}: a repository already exists here")
        if not passphrase:
            raise RepositoryError("refusing an empty passphrase")
        master = MasterKey.generate()
        config = RepositoryConfig(id=uuid.uuid4().hex, chunker=chunker or ChunkerParams(), pack_size=pack_size)
        storage.save("config", master.seal(config.to_bytes(), CONFIG_AAD))
        key_id = write_key_file(storage, master, passphrase, now, host, user)
        return cls(storage, master, config, key_id, ObjectCache.for_repository(config.id))

    @classmethod
    def open(cls, storage: Storage, passphrase: bytes) -> Repository:
        """Raises WrongPassphrase, RepositoryError (no repository), BackupCorrupted (bad config)."""
        master, key_id = open_master_key(storage, passphrase)
        return cls.open_with_master_key(storage, master, key_id)

    @classmethod
    def open_with_master_key(cls, storage: Storage, master: MasterKey, key_id: str = "") -> Repository:
        try:
            raw = master.open(storage.load("config"), CONFIG_AAD)
        except ObjectNotFound:
            raise RepositoryError(f"{storage.describe()}: no repository here (no config)") from None
        except AuthenticationFailed:
            raise BackupCorrupted(f"{storage.describe()}: the config does not open with this key") from None
        config = RepositoryConfig.from_bytes(raw)
        if config.version != FORMAT_VERSION:
            raise RepositoryError(
                f"{storage.describe()}: repository format version {config.version} is not "
                f"supported by this Lifeboat (it reads version {FORMAT_VERSION})"
            )
        return cls(storage, master, config, key_id, ObjectCache.for_repository(config.id))

    def uncached(self, scratch: Path) -> Repository:
        """The same repository read from the storage, not from the local copy: what a check
        must see. Each object is fetched once and kept in the empty folder `scratch` for the
        caller's next reads (one tree pack holds many trees: a GET per tree made a check of
        the app dataset on S3 slower than restic's)."""
        return Repository(self.storage, self.master, self.config, self.key_id, ObjectCache(scratch))

    # Index

    def load_index(self) -> Index:
        """Read every index file once; unreadable ones are noted in index_problems."""
        if self._index_loaded:
            return self.index
        listed = [info.key for info in self.storage.list("index/")]

        def stored(key: str) -> bytes:
            try:
                return self._load_object(key)
            except ObjectNotFound as err:
                raise IndexDamaged(str(err)) from None

        damaged = self.index.add_files(self.master, listed, stored)
        self.index_problems += [f"{key}: {err}" for key, err in damaged.items()]
        self._index_loaded = True
        release_free_heap()  # the index files' buffers, now below the records in the heap
        if self.objects is not None:
            self.objects.keep_only("index/", listed)
            self.objects.keep_only("data/", {pack_key(pack) for pack in self.index.packs()})
        return self.index

    @contextmanager
    def locked(
        self, exclusive: bool, purpose: str, clock: Callable[[], datetime], wait: timedelta = timedelta(0)
    ) -> Iterator[Lease]:
        """Hold a shared or exclusive lease for the block. Raises RepositoryLocked."""
        lease = Lease(self.storage, self.master, exclusive, purpose, clock).acquire(wait)
        self.lease = lease
        try:
            yield lease
        finally:
            self.lease = None
            lease.release()

    def check_lease(self) -> None:
        """Raise LeaseLost if a lease is held but may have been lost; called before commits."""
        if self.lease is not None:
            self.lease.check()

    def blob_writer(self, compression: str = "auto", uploads: int = 2) -> BlobWriter:
        self.load_index()
        return BlobWriter(
            self.storage,
            self.master,
            self.index,
            self.config.pack_size,
            COMPRESSION_LEVELS[compression],
            uploads,
            before_commit=self.check_lease,
            objects=self.objects,
        )

    # Blobs

    def locate(self, blob_id: bytes) -> BlobLocation:
        location = self.load_index().get(blob_id)
        if location is None:
            raise BackupCorrupted(f"blob {blob_id.hex()[:16]} is not in any index (missing data)")
        return location

    def load_blob(self, blob_id: bytes, remember: bool = True) -> bytes:
        """The verified plaintext of a blob. Raises BackupCorrupted. `remember`: keep a tree
        in the in-memory LRU (a walk that reads each tree once, as a restore's, need not)."""
        cached = self.cache.get(blob_id)
        if cached is not None:
            return cached
        location = self.locate(blob_id)
        key = pack_key(location.pack)
        try:
            if location.type == BlobType.TREE and self.objects is not None:
                return self._load_tree_blob(blob_id, location, self.objects, remember)
            sealed = self.storage.load(key, location.offset, location.length)
        except ObjectNotFound:
            raise BackupCorrupted(
                f"pack {location.pack.hex()[:16]} holding blob {blob_id.hex()[:16]} is missing"
            ) from None
        plaintext = self.open_sealed(blob_id, sealed)
        if location.type == BlobType.TREE and remember:
            self.cache.put(blob_id, plaintext)
        return plaintext

    def _load_tree_blob(self, blob_id: bytes, location: BlobLocation, objects: ObjectCache, remember: bool) -> bytes:
        """A tree from the local copy of its pack (trees have packs of their own, so the
        pack a directory's tree is in holds its neighbours' too: one GET serves many)."""
        key = pack_key(location.pack)
        sealed = objects.load_range(key, location.offset, location.length, self.storage)
        try:
            plaintext = open_blob(self.master, blob_id, sealed)
        except BlobDamaged:
            objects.discard(key)  # whatever was wrong, the storage's bytes decide
            plaintext = self.open_sealed(blob_id, self.storage.load(key, location.offset, location.length))
        if remember:
            self.cache.put(blob_id, plaintext)
        return plaintext

    def load_blobs(self, blob_ids: list[bytes]) -> Iterator[bytes]:
        """Verified blobs in order; a run of adjacent blobs in one pack is one ranged read."""
        position = 0
        while position < len(blob_ids):
            first = blob_ids[position]
            cached = self.cache.get(first)
            if cached is not None:
                yield cached
                position += 1
                continue
            run = [(first, self.locate(first))]
            end = position + 1
            while end < len(blob_ids) and sum(loc.length for _, loc in run) < _MAX_RANGED_READ:
                following = self.index.get(blob_ids[end])
                last = run[-1][1]
                if following is None or following.pack != last.pack or following.offset != last.offset + last.length:
                    break
                run.append((blob_ids[end], following))
                end += 1
            start = run[0][1].offset
            try:
                data = memoryview(self.storage.load(pack_key(run[0][1].pack), start, sum(loc.length for _, loc in run)))
            except ObjectNotFound:
                raise BackupCorrupted(f"pack {run[0][1].pack.hex()[:16]} is missing") from None
            for blob_id, location in run:
                plaintext = self.open_sealed(
                    blob_id, data[location.offset - start : location.offset - start + location.length]
                )
                self.cache.put(blob_id, plaintext)
                yield plaintext
            position = end

    def open_sealed(self, blob_id: bytes, sealed: bytes | memoryview) -> bytes:
        try:
            return open_blob(self.master, blob_id, sealed)
        except BlobDamaged as err:
            raise BackupCorrupted(str(err)) from None

    def load_tree(self, tree_id: str, remember: bool = True) -> list[Node]:
        return decode_tree(self.load_blob(bytes.fromhex(tree_id), remember))

    # Snapshots

    def save_snapshot(self, snapshot: Snapshot) -> str:
        self.check_lease()
        stored = self.master.seal(snapshot.to_bytes(), SNAPSHOT_AAD)
        snapshot_id = content_hash(stored)
        save_and_keep(self.storage, self.objects, f"snapshots/{snapshot_id}", stored)
        return snapshot_id

    def load_snapshot(self, snapshot_id: str) -> Snapshot:
        try:
            stored = self._load_object(f"snapshots/{snapshot_id}")
        except ObjectNotFound:
            raise BackupNotFound(f"no snapshot {snapshot_id!r} in {self.storage.describe()}") from None
        try:
            return Snapshot.from_bytes(self.master.open(stored, SNAPSHOT_AAD))
        except AuthenticationFailed:
            raise BackupCorrupted(f"snapshot {snapshot_id[:16]} failed authentication") from None

    def snapshots(self) -> list[SnapshotEntry]:
        """All snapshots, oldest first."""
        listed = [info.key for info in self.storage.list("snapshots/")]
        entries = [
            SnapshotEntry(key.removeprefix("snapshots/"), self.load_snapshot(key.removeprefix("snapshots/")))
            for key in listed
        ]
        if self.objects is not None:
            self.objects.keep_only("snapshots/", listed)
        return sorted(entries, key=lambda e: (e.snapshot.time, e.id))

    def latest_snapshot(
        self, tags: Mapping[str, str | None], paths: Sequence[str] | None = None
    ) -> SnapshotEntry | None:
        """The newest snapshot whose tags have these values (None: the tag is absent) and, when
        given, these paths: what an incremental or differential backup compares with."""
        candidates = [
            entry
            for entry in self.snapshots()
            if all(entry.snapshot.tags.get(key) == value for key, value in tags.items())
            and (paths is None or entry.snapshot.paths == list(paths))
        ]
        return candidates[-1] if candidates else None

    def snapshot_keys(self) -> frozenset[str]:
        """The snapshot objects' keys (one listing; nothing is read)."""
        return frozenset(info.key for info in self.storage.list("snapshots/"))

    def discard_unused(self, keys: list[str], snapshots_before: frozenset[str]) -> bool:
        """Remove what a failed backup wrote (`keys`: its packs and checkpoint index files) when
        nobody can have used it: no snapshot was committed since it started (`snapshots_before`)
        and no other live process holds a lock, so no other backup deduplicated against it.
        Otherwise leave it to prune. Returns whether it was removed."""
        if self.snapshot_keys() != snapshots_before:
            return False
        ours = self.lease.key if self.lease is not None else None
        others = [lock for lock in list_locks(self.storage, self.master, datetime.now(UTC)) if not lock.stale]
        if any(lock.key != ours for lock in others):
            return False
        for key in [k for k in keys if k.startswith("index/")] + [k for k in keys if not k.startswith("index/")]:
            with contextlib.suppress(ObjectNotFound):
                self.storage.remove(key)
        self.index, self._index_loaded = Index(), False  # it named the removed packs: read it again when needed
        return True

    def resolve_snapshot(self, prefix: str) -> str:
        """A full snapshot id from a unique prefix (or 'latest')."""
        ids = [info.key.removeprefix("snapshots/") for info in self.storage.list("snapshots/")]
        if prefix == "latest":
            entries = self.snapshots()
            if not entries:
                raise BackupNotFound(f"no snapshots in {self.storage.describe()}")
            return entries[-1].id
        matches = [i for i in ids if i.startswith(prefix)]
        if len(matches) != 1:
            what = "no snapshot" if not matches else f"{len(matches)} snapshots"
            raise BackupNotFound(f"{what} with id starting {prefix!r} in {self.storage.describe()}")
        return matches[0]

    def forget(self, snapshot_id: str) -> None:
        self.storage.remove(f"snapshots/{snapshot_id}")
        if self.objects is not None:
            self.objects.discard(f"snapshots/{snapshot_id}")

    def _load_object(self, key: str) -> bytes:
        """A whole write-once object (a snapshot, an index file), from the local copy if any."""
        if self.objects is None:
            return self.storage.load(key)
        return self.objects.load(key, lambda: self.storage.load(key))


def _exists(storage: Storage, key: str) -> bool:
    try:
        storage.stat(key)
    except ObjectNotFound:
        return False
    return True
