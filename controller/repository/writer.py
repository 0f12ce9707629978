"""BlobWriter: deduplicate, seal and pack blobs from many threads; upload packs behind.

Workers call `add` concurrently; sealing (zstd + AES-GCM, which release the GIL) runs in
the caller's thread, packing under a short lock (packs fill unlinked files: see
pack.PackBuilder), uploads on a small pool. A blob is only
entered in the index once its pack is stored, and index files only name stored packs:
checkpoints during the backup, the rest in `finish`, all before the snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from controller.repository.blobs import BlobType, frame_blob
from controller.repository.crypto import MasterKey, content_hash
from controller.repository.heap import release_free_heap
from controller.repository.index import BlobLocation, Index, IndexRows
from controller.repository.object_cache import ObjectCache, save_and_keep
from controller.repository.pack import FinishedPack, PackBuilder
from controller.storage.base import Storage

# A tree pack closes at 4 MiB (a data pack at the repository's pack size): a job on a cold
# cache copies a whole tree pack to read one tree of it. (Chosen when packs were filled in
# memory, where three 16 MiB tree packs at once made a day's backup of a million small
# files peak half again above 300,000's.)
TREE_PACK_SIZE = 4 * 1024 * 1024


def pack_key(pack_id: bytes) -> str:
    hex_id = pack_id.hex()
    return f"data/{hex_id[:2]}/{hex_id}"


class BlobWriter:
    def __init__(
        self,
        storage: Storage,
        master: MasterKey,
        index: Index,
        pack_size: int,
        compression_level: int,
        uploads: int = 2,
        checkpoint_packs: int = 8,
        checkpoint_entries: int = 50_000,
        before_commit: Callable[[], None] = lambda: None,
        objects: ObjectCache | None = None,
    ) -> None:
        """`objects`: the local copy, given the tree packs and index files this writer stores."""
        self._objects = objects
        self._before_commit = before_commit  # raises when this writer may no longer commit (lost lock)
        self._storage, self._master, self._index = storage, master, index
        # Every few packs the entries so far go into an index file of their own: a backup
        # that is killed then leaves indexed packs, which the next backup does not upload
        # again (resumable), and which prune removes if no snapshot ever uses them. Also
        # every 50,000 entries, as restic caps its index files: eight packs of small files
        # held 240,000, and encoding them (joined, compressed, sealed: each a copy of
        # incompressible ids) was the peak of a backup of many small files.
        self._checkpoint_packs, self._packs_since_checkpoint = checkpoint_packs, 0
        self._checkpoint_entries = checkpoint_entries
        self._level = compression_level
        self._pack_sizes = {BlobType.DATA: pack_size, BlobType.TREE: min(pack_size, TREE_PACK_SIZE)}
        self._lock = threading.Lock()
        self._pending: set[bytes] = set()  # sealed or packed, not yet indexed
        # One open pack per blob type: trees never share a pack with data, so damage to file
        # content cannot take a snapshot's directory listings with it (as in restic).
        self._packs = {BlobType.DATA: PackBuilder(), BlobType.TREE: PackBuilder()}
        self._new_entries = IndexRows()
        self._uploader = ThreadPoolExecutor(max_workers=uploads, thread_name_prefix="upload")
        self._in_flight = threading.BoundedSemaphore(uploads)  # bounds memory held by finished packs
        self._uploads: list[Future[None]] = []
        self._failure: BaseException | None = None
        self.bytes_added = 0
        self.blobs_added = 0
        self.saved: list[str] = []  # every object this writer stored (packs, checkpoint index files)

    @property
    def compression_level(self) -> int:
        return self._level

    def add(self, type_: BlobType, blob_id: bytes, plaintext: bytes | memoryview, framed: bytes | None = None) -> bool:
        """Store the blob unless already known; True if it was new. `plaintext` is sealed
        (copied) before this returns, so a view into a buffer the caller reuses is fine.
        `framed`: its frame_blob at this writer's level, when made ahead."""
        self._raise_if_failed()
        with self._lock:
            if blob_id in self._index or blob_id in self._pending:
                return False
            self._pending.add(blob_id)
        if framed is None:
            framed = frame_blob(plaintext, self._level)
        full: PackBuilder | None = None
        with self._lock:  # AES-GCM releases the GIL: the other threads go on reading and compressing
            pack = self._packs[type_]
            self.bytes_added += pack.add(self._master, type_, blob_id, framed, len(plaintext))
            self.blobs_added += 1
            if pack.size >= self._pack_sizes[type_]:
                full, self._packs[type_] = pack, PackBuilder()
        if full is not None:
            self._upload(type_, full)
        return True

    def _raise_if_failed(self) -> None:
        """After an upload failed (retries exhausted or permanent), stop taking work at once
        rather than sealing and queueing packs that the caller will never commit."""
        failure = self._failure
        if failure is not None:
            raise failure

    def _upload(self, type_: BlobType, builder: PackBuilder) -> None:
        self._in_flight.acquire()
        if self._failure is not None:
            self._in_flight.release()
            builder.close()
            self._raise_if_failed()
        try:
            pack = builder.finish(self._master)
        except BaseException:
            self._in_flight.release()
            builder.close()
            raise

        def store() -> None:
            try:
                copies = self._objects if type_ == BlobType.TREE else None  # data packs are not copied
                save_and_keep(self._storage, copies, pack_key(pack.id), pack.data)
                release_free_heap()  # a pack's worth of chunks went through the threads' heaps
                self._indexed(pack)
            except BaseException as err:
                with self._lock:
                    self._failure = self._failure or err
                raise
            finally:
                builder.close()
                self._in_flight.release()

        self._uploads.append(self._uploader.submit(store))

    def _indexed(self, pack: FinishedPack) -> None:
        """Enter a stored pack's blobs in the index, then write a checkpoint if one is due."""
        with self._lock:
            self.saved.append(pack_key(pack.id))
            for entry in pack.entries():
                location = BlobLocation(entry.type, pack.id, entry.offset, entry.length, entry.raw_length)
                self._index.add(entry.id, location)
                self._new_entries.add(entry.id, location)
                self._pending.discard(entry.id)
            self._packs_since_checkpoint += 1
            due = (
                self._packs_since_checkpoint >= self._checkpoint_packs
                or len(self._new_entries) >= self._checkpoint_entries
            )
            checkpoint = self._take_entries() if due else None
        if checkpoint:
            self._write_index(checkpoint)

    def flush(self) -> None:
        """Store the partial pack and wait for every upload; raises the first upload error."""
        with self._lock:
            open_packs = self._packs
            self._packs = {BlobType.DATA: PackBuilder(), BlobType.TREE: PackBuilder()}
        for type_, pack in open_packs.items():
            if len(pack):
                self._upload(type_, pack)
            else:
                pack.close()
        for upload in self._uploads:
            upload.result()
        self._uploads.clear()

    def finish(self) -> str | None:
        """Flush, then index what is not indexed yet; the key of the last index file or None."""
        self.flush()
        self.close()
        with self._lock:
            remaining = self._take_entries()
        return self._write_index(remaining) if remaining else None

    def _take_entries(self) -> IndexRows:
        """Hand over the entries not yet in an index file (call with the lock held)."""
        taken, self._new_entries = self._new_entries, IndexRows()
        self._packs_since_checkpoint = 0
        return taken

    def _write_index(self, entries: IndexRows) -> str:
        self._before_commit()
        stored = entries.encode(self._master)
        key = f"index/{content_hash(stored)}"
        save_and_keep(self._storage, self._objects, key, stored)
        with self._lock:
            self.saved.append(key)
        return key

    def close(self) -> None:
        self._uploader.shutdown(wait=True)

    def abort(self) -> None:
        """Stop without writing an index: stored packs become garbage for prune."""
        for upload in self._uploads:
            upload.cancel()
        self._uploader.shutdown(wait=True, cancel_futures=True)
        for pack in self._packs.values():
            pack.close()
