"""Pruner: delete what no snapshot needs (mark and sweep), repacking mostly-garbage packs.

Order, so that a crash at any point leaves a valid repository: mark every blob the
snapshots reach (abort on any unreadable tree or missing blob), write repacked packs, write
one new index of everything kept, then delete the old index files, then the packs. Packs
in no index are deleted only after a grace period, and packs named by young index files
are left alone: both may belong to a backup that is still running.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from controller.errors import BackupCorrupted, ObjectNotFound, RepositoryError
from controller.repository.crypto import content_hash
from controller.repository.index import BlobLocation, Index, IndexDamaged, decode_index, encode_index
from controller.repository.object_cache import save_and_keep
from controller.repository.records import NodeType
from controller.repository.repository import COMPRESSION_LEVELS, Repository
from controller.repository.writer import BlobWriter, pack_key


@dataclass
class PruneReport:
    snapshots: int = 0
    used_blobs: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    unindexed_deleted: int = 0
    bytes_freed: int = 0
    index_files_replaced: int = 0
    incomplete_writes_removed: int = 0  # temp files or multipart uploads of killed writers
    kept_young_bytes: int = 0  # unreferenced, but written within the grace period (a running backup may own it)
    kept_until: datetime | None = None  # when the last of it is old enough to go

    def grace_note(self) -> str:
        """What the grace period kept, and when a prune can free it; "" when it kept nothing."""
        if not self.kept_young_bytes or self.kept_until is None:
            return ""
        when = self.kept_until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"kept {self.kept_young_bytes} unreferenced bytes written within the grace period "
            f"(a running backup may own them); a prune after {when} frees them"
        )


class Pruner:
    def __init__(
        self,
        repository: Repository,
        now: datetime,
        grace: timedelta = timedelta(hours=1),
        repack_below: float = 0.5,
        compression: str = "auto",
    ) -> None:
        self.repository = repository
        self.now, self.grace = now, grace
        self.repack_below = repack_below  # repack packs whose used share of bytes is below this
        self.compression = compression

    def prune(self, dry_run: bool = False) -> PruneReport:
        repository, storage = self.repository, self.repository.storage
        report = PruneReport()
        index_files = list(storage.list("index/"))
        entries: list[tuple[bytes, BlobLocation]] = []
        protected: set[bytes] = set()
        for info in index_files:
            try:
                decoded = decode_index(repository.master, storage.load(info.key))
            except (IndexDamaged, ObjectNotFound) as err:
                raise RepositoryError(f"prune aborted: {info.key} is unreadable ({err}); run check") from None
            entries += decoded
            if info.modified > self.now - self.grace:
                protected |= {location.pack for _, location in decoded}
        index = Index()
        for blob_id, location in entries:
            index.add(blob_id, location)
        repository.index = index
        used = self._mark(report)
        report.used_blobs = len(used)

        pack_sizes = {info.key: info for info in storage.list("data/")}
        per_pack: dict[bytes, list[tuple[bytes, BlobLocation]]] = defaultdict(list)
        for blob_id, location in index.items():
            per_pack[location.pack].append((blob_id, location))
        for blob_id in used:
            found = index.get(blob_id)
            if found is None or pack_key(found.pack) not in pack_sizes:
                raise RepositoryError(f"prune aborted: blob {blob_id.hex()[:16]} is missing; run check")

        delete, repack, young = [], [], []
        for pack, blobs in per_pack.items():
            total = sum(loc.length for _, loc in blobs)
            kept = sum(loc.length for blob_id, loc in blobs if blob_id in used)
            if pack in protected:
                if kept == 0 and pack_key(pack) in pack_sizes:
                    young.append(pack_sizes[pack_key(pack)])
                continue
            if kept == 0:
                delete.append(pack)
            elif kept < total * self.repack_below:
                repack.append(pack)
        indexed_keys = {pack_key(location.pack) for _, location in entries}
        stale_unindexed = [
            info
            for key, info in pack_sizes.items()
            if key not in indexed_keys and info.modified < self.now - self.grace
        ]
        young += [info for key, info in pack_sizes.items() if key not in indexed_keys and info not in stale_unindexed]
        report.kept_young_bytes = sum(info.size for info in young)
        report.kept_until = max((info.modified for info in young), default=None)
        report.kept_until = report.kept_until + self.grace if report.kept_until else None
        report.packs_deleted, report.packs_repacked = len(delete), len(repack)
        report.unindexed_deleted = len(stale_unindexed)
        gone = set(delete) | set(repack)
        report.bytes_freed = sum(pack_sizes[pack_key(p)].size for p in gone if pack_key(p) in pack_sizes) + sum(
            info.size for info in stale_unindexed
        )
        if dry_run:
            return report
        report.incomplete_writes_removed = storage.remove_incomplete(self.now - self.grace)
        if not gone and not stale_unindexed:
            return report

        new_entries = self._repack(repack, used, per_pack)
        repository.check_lease()  # nothing is replaced or deleted by a holder that lost its lock
        kept_entries = [(blob_id, location) for blob_id, location in index.items() if location.pack not in gone]
        stored = encode_index(repository.master, kept_entries + new_entries)
        new_key = f"index/{content_hash(stored)}"
        save_and_keep(storage, repository.objects, new_key, stored)
        for info in index_files:
            if info.key != new_key:
                storage.remove(info.key)
                report.index_files_replaced += 1
        for pack in gone:
            storage.remove(pack_key(pack))
        for info in stale_unindexed:
            storage.remove(info.key)
        repository.index = Index()
        for blob_id, location in kept_entries + new_entries:
            repository.index.add(blob_id, location)
        return report

    def _mark(self, report: PruneReport) -> set[bytes]:
        repository = self.repository
        used: set[bytes] = set()
        for info in repository.storage.list("snapshots/"):
            report.snapshots += 1
            snapshot = repository.load_snapshot(info.key.removeprefix("snapshots/"))
            stack = [snapshot.tree]
            while stack:
                tree_id = stack.pop()
                raw_id = bytes.fromhex(tree_id)
                if raw_id in used:
                    continue
                used.add(raw_id)
                try:
                    nodes = repository.load_tree(tree_id)
                except BackupCorrupted as err:
                    raise RepositoryError(f"prune aborted: {err}; run check") from None
                for node in nodes:
                    if node.type == NodeType.DIR and node.subtree:
                        stack.append(node.subtree)
                    used.update(bytes.fromhex(c) for c in node.content)
        return used

    def _repack(
        self, packs: list[bytes], used: set[bytes], per_pack: dict[bytes, list[tuple[bytes, BlobLocation]]]
    ) -> list[tuple[bytes, BlobLocation]]:
        if not packs:
            return []
        repository = self.repository
        fresh = Index()  # the old copies are in the repository index; dedupe only among new packs
        writer = BlobWriter(
            repository.storage,
            repository.master,
            fresh,
            repository.config.pack_size,
            COMPRESSION_LEVELS[self.compression],
            objects=repository.objects,
        )
        for pack in packs:
            for blob_id, location in per_pack[pack]:
                if blob_id in used:
                    writer.add(location.type, blob_id, repository.load_blob(blob_id))
        writer.flush()
        writer.close()  # no index file of its own: the caller writes one index of everything kept
        return list(fresh.items())
