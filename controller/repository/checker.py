"""Checker: find damage and say what it affects (which snapshots, which files).

Structure: every index file readable, every indexed pack present, every snapshot's trees
loadable and every content blob indexed in a present pack. Read-data: download packs
(all, or a share chosen at random), authenticate the header, open every blob and compare
with the index. Damage is reported per object; the check itself never stops at the first.
"""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import BackupCorrupted, ObjectNotFound
from controller.repository.blobs import BlobDamaged, open_blob
from controller.repository.object_cache import scratch_parent
from controller.repository.pack import PackDamaged, read_header
from controller.repository.records import Node, NodeType
from controller.repository.repository import Repository
from controller.repository.writer import pack_key


@dataclass
class Damage:
    object: str  # storage key or blob id
    problem: str
    snapshots: set[str] = field(default_factory=set)  # ids of snapshots it breaks
    files: set[str] = field(default_factory=set)  # "snapshot:path" entries it breaks

    def describe(self) -> str:
        text = f"{self.object}: {self.problem}"
        if self.snapshots:
            text += f"; affects snapshot(s) {', '.join(sorted(s[:8] for s in self.snapshots))}"
        if self.files:
            shown = sorted(self.files)
            text += f"; files: {', '.join(shown[:5])}" + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        return text


@dataclass
class CheckReport:
    snapshots: int = 0
    packs: int = 0
    packs_read: int = 0
    blobs_read: int = 0
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # harmless findings (unreferenced packs)

    @property
    def ok(self) -> bool:
        return not self.damage


class Checker:
    def __init__(self, repository: Repository, workers: int = 2) -> None:
        """`workers`: packs a read-data check downloads ahead of the one it verifies."""
        self._opened = repository
        self.repository = repository  # during a check: the storage's bytes, not the local copy's
        self.workers = workers
        # damage to blobs, named with what it breaks by one more walk of the snapshots at
        # the end (holding every blob's users from the first walk cost hundreds of MiB)
        self._blob_damage: list[tuple[Damage, list[bytes]]] = []

    def check(
        self,
        read_data_percent: float = 0.0,
        rng: random.Random | None = None,
        read_data_window: tuple[float, float] | None = None,
    ) -> CheckReport:
        """`read_data_percent`: a random share of the packs is read; `read_data_window`
        (start, end) in [0, 1], wrapping when start > end: the packs whose cycle_position
        falls in it (a rolling verification reads a new window at each check)."""
        with tempfile.TemporaryDirectory(prefix="lifeboat-check-", dir=scratch_parent()) as scratch:
            self.repository = self._opened.uncached(Path(scratch))
            try:
                return self._check(read_data_percent, rng, read_data_window)
            finally:
                self.repository = self._opened

    def _check(
        self, read_data_percent: float, rng: random.Random | None, read_data_window: tuple[float, float] | None
    ) -> CheckReport:
        report = CheckReport()
        repository = self.repository
        index = repository.load_index()
        report.damage += [Damage(p.split(":", 1)[0], p.split(":", 1)[1].strip()) for p in repository.index_problems]
        present = {info.key: info.size for info in repository.storage.list("data/")}
        report.packs = len(present)
        missing_packs = {pack for pack in index.packs() if pack_key(pack) not in present}
        self._check_snapshots(report, missing_packs)
        indexed = {pack_key(p) for p in index.packs()}
        unreferenced = sorted(set(present) - indexed)
        if unreferenced:
            report.notes.append(
                f"{len(unreferenced)} pack(s) not in any index (left by an interrupted backup; prune removes them)"
            )
        readable = sorted(indexed & set(present))
        if read_data_window is not None:
            self._read_data(report, [p for p in readable if _in_window(cycle_position(p), read_data_window)], 100, rng)
        elif read_data_percent > 0:
            self._read_data(report, readable, read_data_percent, rng or random.Random())
        if self._blob_damage:
            self._name_users()
        return report

    def _check_snapshots(self, report: CheckReport, missing_packs: set[bytes]) -> None:
        repository = self.repository
        damage_by_object: dict[str, Damage] = {}
        # Each tree is read once: snapshots share most of theirs, and a later snapshot's
        # copy of a tree needs only its findings named again.
        checked: dict[str, tuple[list[tuple[str, str, str | None]], list[tuple[str, str]]]] = {}

        def damaged(obj: str, problem: str, snapshot: str, path: str | None) -> None:
            entry = damage_by_object.setdefault(obj, Damage(obj, problem))
            entry.snapshots.add(snapshot)
            if path is not None:
                entry.files.add(f"{snapshot[:8]}:{path}")

        for info in repository.storage.list("snapshots/"):
            snapshot_id = info.key.removeprefix("snapshots/")
            report.snapshots += 1
            try:
                snapshot = repository.load_snapshot(snapshot_id)
            except BackupCorrupted as err:
                damaged(info.key, str(err), snapshot_id, None)
                continue
            stack = [(snapshot.tree, "")]
            while stack:
                tree_id, path = stack.pop()
                found = checked.get(tree_id)
                if found is None:
                    found = checked[tree_id] = self._check_tree(tree_id, missing_packs)
                problems, subtrees = found
                for obj, problem, name in problems:
                    damaged(obj, problem, snapshot_id, f"{path}/{name}" if name is not None else path or "/")
                stack += [(subtree, f"{path}/{name}") for subtree, name in subtrees]
        report.damage += list(damage_by_object.values())

    def _check_tree(
        self, tree_id: str, missing_packs: set[bytes]
    ) -> tuple[list[tuple[str, str, str | None]], list[tuple[str, str]]]:
        """A tree's own findings as (object, problem, the node's name or None for the tree
        itself), and its subtrees as (id, name)."""
        try:
            nodes = self.repository.load_tree(tree_id)
        except (BackupCorrupted, ObjectNotFound) as err:
            return [(f"tree {tree_id[:16]}", str(err), None)], []
        problems: list[tuple[str, str, str | None]] = []
        for node in nodes:
            for content in node.content:
                location = self.repository.index.get(bytes.fromhex(content))
                if location is None:
                    problems.append((f"blob {content[:16]}", "not in any index", node.name))
                elif location.pack in missing_packs:
                    problems.append((pack_key(location.pack), "pack is missing", node.name))
        return problems, [(n.subtree, n.name) for n in nodes if n.type == NodeType.DIR and n.subtree]

    def _read_data(self, report: CheckReport, packs: list[str], percent: float, rng: random.Random | None) -> None:
        chosen = packs if percent >= 100 or rng is None else [p for p in packs if rng.random() * 100 < percent]
        indexed = self.repository.index.pack_counts()
        for key, data in self._downloads(chosen):
            pack_id = _pack_id(key)
            report.packs_read += 1
            if isinstance(data, Exception):
                self._damaged_blobs(report, key, str(data), self._indexed_in(pack_id))
                continue
            report.blobs_read += indexed.get(pack_id, 0)
            for problem, blobs in self._verify_pack(pack_id, data, indexed.get(pack_id, 0)):
                self._damaged_blobs(report, key, problem, blobs)

    def _downloads(self, keys: list[str]) -> Iterator[tuple[str, bytes | ObjectNotFound]]:
        """The packs in order, `workers` downloading ahead. Only the downloads run in
        threads: verifying small blobs is Python work under the GIL, and threads doing it
        would wait for the GIL after every decryption (slower than one thread)."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="check") as pool:
            ahead: deque[tuple[str, Future[bytes]]] = deque()
            for key in [*keys, None]:
                if key is not None:
                    ahead.append((key, pool.submit(self.repository.storage.load, key)))
                while ahead and (key is None or len(ahead) > self.workers):
                    done_key, future = ahead.popleft()
                    try:
                        yield done_key, future.result()
                    except ObjectNotFound as err:
                        yield done_key, err

    def _verify_pack(self, pack_id: bytes, data: bytes, indexed: int) -> list[tuple[str, list[bytes]]]:
        """Open every blob of the pack that the index places there, and make sure the index
        places no other blob there (`indexed`: how many it places). Returns [(problem, the
        blobs it concerns)]. Works from the pack's header, so nothing per blob is held."""
        master, index = self.repository.master, self.repository.index
        try:
            header = read_header(master, data)
        except PackDamaged as err:
            return [(str(err), self._indexed_in(pack_id))]
        problems: list[tuple[str, list[bytes]]] = []
        listed = 0
        for entry in header:
            location = index.get(entry.id)
            if location is None or (location.pack, location.offset, location.length) != (
                pack_id,
                entry.offset,
                entry.length,
            ):
                continue  # a copy the index does not use (prune's business, not damage)
            listed += 1
            try:
                open_blob(master, entry.id, memoryview(data)[entry.offset : entry.offset + entry.length])
            except BlobDamaged as err:
                problems.append((str(err), [entry.id]))
        if listed < indexed:
            in_header = {(e.id, e.offset, e.length) for e in header}
            for blob_id, location in index.items():
                if location.pack == pack_id and (blob_id, location.offset, location.length) not in in_header:
                    problems.append((f"header does not list blob {blob_id.hex()[:16]}", [blob_id]))
        return problems

    def _indexed_in(self, pack_id: bytes) -> list[bytes]:
        """The blobs the index places in a pack (a scan of the index: only for damage)."""
        return [blob_id for blob_id, location in self.repository.index.items() if location.pack == pack_id]

    def _damaged_blobs(self, report: CheckReport, key: str, problem: str, blobs: list[bytes]) -> None:
        damage = Damage(key, problem)
        report.damage.append(damage)
        self._blob_damage.append((damage, blobs))

    def _name_users(self) -> None:
        """Add to each blob damage the snapshots and files (or directories, for a tree) it breaks."""
        repository = self.repository
        damage_of: dict[bytes, list[Damage]] = defaultdict(list)
        for damage, blobs in self._blob_damage:
            for blob_id in blobs:
                damage_of[blob_id].append(damage)

        def used(blob_id: bytes, snapshot_id: str, path: str) -> None:
            for damage in damage_of.get(blob_id, ()):
                damage.snapshots.add(snapshot_id)
                damage.files.add(f"{snapshot_id[:8]}:{path}")

        for info in repository.storage.list("snapshots/"):
            snapshot_id = info.key.removeprefix("snapshots/")
            try:
                root = repository.load_snapshot(snapshot_id).tree
            except BackupCorrupted:
                continue
            for tree_id, path, nodes in self._trees(root):
                used(bytes.fromhex(tree_id), snapshot_id, path or "/")
                for node in [] if isinstance(nodes, Exception) else nodes:
                    for content in node.content:
                        used(bytes.fromhex(content), snapshot_id, f"{path}/{node.name}")

    def _trees(self, root: str) -> Iterator[tuple[str, str, list[Node] | Exception]]:
        """Every tree below `root`, depth first: (its id, its path, its nodes or why they
        cannot be read). The path of the root is ""."""
        stack = [(root, "")]
        while stack:
            tree_id, path = stack.pop()
            try:
                nodes = self.repository.load_tree(tree_id)
            except (BackupCorrupted, ObjectNotFound) as err:
                yield tree_id, path, err
                continue
            yield tree_id, path, nodes
            stack += [(n.subtree, f"{path}/{n.name}") for n in nodes if n.type == NodeType.DIR and n.subtree]


def _pack_id(key: str) -> bytes:
    return bytes.fromhex(key.rsplit("/", 1)[1])


def cycle_position(pack_key: str) -> float:
    """Where a pack sits in a rolling read-data cycle, in [0, 1): from its id, so it is
    the same at every check and packs spread evenly."""
    return int(pack_key.rsplit("/", 1)[1][:8], 16) / 2**32


def _in_window(position: float, window: tuple[float, float]) -> bool:
    start, end = window
    return start <= position < end if start <= end else position >= start or position < end
