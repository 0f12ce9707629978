"""Incremental and full backups, parents, and files that change while they are read."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from controller.repository.repository import Repository, SnapshotEntry
from controller.repository.restorer import Restorer
from controller.storage.base import Storage
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree


def entry(repository: Repository, snapshot_id: str) -> SnapshotEntry:
    return SnapshotEntry(snapshot_id, repository.load_snapshot(snapshot_id))


def make_source(root: Path) -> None:
    write_tree(root, {f"dir{i}/file{j}.bin": random_bytes(i * 100 + j, 30_000) for i in range(3) for j in range(5)})


def test_unchanged_files_are_not_read_again(tmp_path: Path, storage: Storage) -> None:
    make_source(tmp_path / "src")
    repository = small_repository(storage)
    first = backup(repository, tmp_path / "src")
    second = backup(repository, tmp_path / "src", parent=entry(repository, first.id))
    assert second.snapshot.summary.bytes_read == 0
    assert second.snapshot.summary.bytes_added < 3000  # only changed directory trees, at most
    assert second.snapshot.parent == first.id
    assert second.snapshot.tree == first.snapshot.tree


def test_a_backup_keeps_none_of_its_parent_trees_in_memory(tmp_path: Path, storage: Storage) -> None:
    """The walk reads each parent tree once: kept in the repository's LRU of blobs, a day's
    changes to a million files filled its 32 MiB where 300,000 filled half of it."""
    make_source(tmp_path / "src")
    first = backup(small_repository(storage), tmp_path / "src")
    job = Repository.open(storage, PASSPHRASE)  # a new job: nothing in its LRU yet
    backup(job, tmp_path / "src", parent=entry(job, first.id))
    trees, unvisited = [], [first.snapshot.tree]
    while unvisited:
        trees.append(unvisited.pop())
        unvisited += [node.subtree for node in job.load_tree(trees[-1], remember=False) if node.subtree]
    assert len(trees) == 4  # the root and three folders
    assert [tree for tree in trees if job.cache.get(bytes.fromhex(tree)) is not None] == []


def test_changed_files_are_read_and_every_snapshot_restores_alone(tmp_path: Path, storage: Storage) -> None:
    source = tmp_path / "src"
    make_source(source)
    repository = small_repository(storage)
    first = backup(repository, source)
    state_one = tree_state(source)
    (source / "dir1" / "file2.bin").write_bytes(random_bytes(999, 30_000))
    (source / "dir0" / "file0.bin").unlink()
    second = backup(repository, source, parent=entry(repository, first.id))
    assert second.snapshot.summary.bytes_read == 30_000
    for snapshot_id, expected in ((first.id, state_one), (second.id, tree_state(source))):
        out = tmp_path / f"out-{snapshot_id[:6]}"
        Restorer(repository).restore(repository.load_snapshot(snapshot_id), out)
        assert tree_state(out) == expected


def test_same_mtime_but_new_ctime_is_read_again(tmp_path: Path, storage: Storage) -> None:
    source = tmp_path / "src"
    make_source(source)
    target = source / "dir2" / "file4.bin"
    repository = small_repository(storage)
    first = backup(repository, source)
    before = target.stat()
    target.write_bytes(random_bytes(5, 30_000))  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back, ctime moves
    second = backup(repository, source, parent=entry(repository, first.id))
    assert second.snapshot.summary.bytes_read == 30_000


def test_full_backup_reads_everything(tmp_path: Path, storage: Storage) -> None:
    make_source(tmp_path / "src")
    repository = small_repository(storage)
    first = backup(repository, tmp_path / "src")
    full = backup(repository, tmp_path / "src")  # no parent: a full backup
    assert full.snapshot.summary.bytes_read == first.snapshot.summary.bytes == 15 * 30_000
    assert full.snapshot.summary.bytes_added < 3000  # read again, but deduplicated


def test_parent_chunks_missing_from_the_index_are_read_again(tmp_path: Path, storage: Storage) -> None:
    make_source(tmp_path / "src")
    repository = small_repository(storage)
    first = backup(repository, tmp_path / "src")
    for info in list(storage.list("index/")):
        storage.remove(info.key)  # the parent's data is no longer known to be present
    fresh = Repository.open(storage, PASSPHRASE)
    second = backup(fresh, tmp_path / "src", parent=entry(fresh, first.id))
    assert second.snapshot.summary.bytes_read == 15 * 30_000


def test_a_file_that_keeps_changing_is_reported(tmp_path: Path, storage: Storage) -> None:
    source = tmp_path / "src"
    source.mkdir()
    growing = source / "app.log"
    growing.write_bytes(random_bytes(1, 4_000_000))
    (source / "quiet.txt").write_text("quiet")
    stop = threading.Event()

    def append() -> None:
        with growing.open("ab") as handle:
            while not stop.is_set():
                handle.write(b"log line\n")
                handle.flush()
                time.sleep(0.0005)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        result = backup(small_repository(storage), source)
    finally:
        stop.set()
        writer.join()
    assert result.problems == ["file changed while being read: app.log (stored as last read)"]
    assert result.snapshot.warnings == result.problems
