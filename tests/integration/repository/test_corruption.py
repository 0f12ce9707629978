"""Damaged repositories: check names the damage and what it breaks; intact data still restores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.errors import BackupCorrupted
from controller.repository.blobs import BlobType
from controller.repository.checker import Checker, cycle_position
from controller.repository.crypto import content_hash
from controller.repository.index import BlobLocation, encode_index
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from tests.integration.repository.conftest import tamper
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, write_tree


@dataclass
class Damaged:
    storage: Storage
    first: str  # snapshot holding only a.bin
    second: str  # snapshot holding a.bin (deduplicated) and b.bin
    packs_of_b: set[str]
    index_of_second: str


@pytest.fixture
def repo(tmp_path: Path, storage: Storage) -> Damaged:
    repository = small_repository(storage, pack_size=64 * 1024)
    source = tmp_path / "src"
    write_tree(source, {"a.bin": random_bytes(1, 100_000)})
    first = backup(repository, source)
    packs_before = {i.key for i in storage.list("data/")}
    index_before = {i.key for i in storage.list("index/")}
    write_tree(source, {"b.bin": random_bytes(2, 100_000)})
    second = backup(repository, source)
    # b's data packs: the new packs that are not the (small) tree pack.
    packs_of_b = {i.key for i in storage.list("data/") if i.key not in packs_before and i.size > 20_000}
    (index_of_second,) = {i.key for i in storage.list("index/")} - index_before
    return Damaged(storage, first.id, second.id, packs_of_b, index_of_second)


def restore_file(storage: Storage, snapshot_id: str, name: str, target: Path) -> bytes:
    repository = Repository.open(storage, PASSPHRASE)
    Restorer(repository).restore(repository.load_snapshot(snapshot_id), target, subpath=name)
    return (target / name).read_bytes()


def test_intact_repository_checks_clean(repo: Damaged) -> None:
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check(read_data_percent=100)
    assert report.ok and report.snapshots == 2 and report.blobs_read > 10


def test_flipped_byte_is_found_by_read_data_and_named(repo: Damaged, tmp_path: Path) -> None:
    key = sorted(repo.packs_of_b)[0]
    data = bytearray(repo.storage.load(key))
    data[100] ^= 0xFF
    tamper(repo.storage, key, bytes(data))
    assert Checker(Repository.open(repo.storage, PASSPHRASE)).check().ok  # structure alone cannot see it
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check(read_data_percent=100)
    (damage,) = report.damage
    assert damage.object == key and "failed authentication" in damage.problem
    assert damage.snapshots == {repo.second}
    assert damage.files == {f"{repo.second[:8]}:/b.bin"}
    assert restore_file(repo.storage, repo.second, "a.bin", tmp_path / "a") == random_bytes(1, 100_000)
    with pytest.raises(BackupCorrupted, match="failed authentication"):
        restore_file(repo.storage, repo.second, "b.bin", tmp_path / "b")


def test_truncated_pack_is_reported_with_every_blob_it_held(repo: Damaged) -> None:
    key = sorted(repo.packs_of_b)[0]
    tamper(repo.storage, key, repo.storage.load(key)[:-10])
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check(read_data_percent=100)
    (damage,) = report.damage
    assert damage.object == key and "pack" in damage.problem
    assert damage.files == {f"{repo.second[:8]}:/b.bin"}


def test_an_indexed_blob_missing_from_its_pack_header_is_found_by_read_data(repo: Damaged) -> None:
    key = sorted(repo.packs_of_b)[0]
    ghost = b"\x07" * 32  # an index file (written by a bug, say) places it in a pack that lacks it
    master = Repository.open(repo.storage, PASSPHRASE).master
    stored = encode_index(
        master, [(ghost, BlobLocation(BlobType.DATA, bytes.fromhex(key.rsplit("/", 1)[1]), 0, 99, 99))]
    )
    repo.storage.save(f"index/{content_hash(stored)}", stored)
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check(read_data_percent=100)
    assert [(d.object, d.problem) for d in report.damage] == [(key, f"header does not list blob {ghost.hex()[:16]}")]


def test_deleted_pack_is_found_by_the_structure_check(repo: Damaged, tmp_path: Path) -> None:
    key = sorted(repo.packs_of_b)[0]
    tamper(repo.storage, key, None)
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check()
    (damage,) = report.damage
    assert (damage.object, damage.problem) == (key, "pack is missing")
    assert damage.snapshots == {repo.second}
    assert restore_file(repo.storage, repo.first, "a.bin", tmp_path / "a") == random_bytes(1, 100_000)


def test_deleted_index_leaves_earlier_snapshots_intact(repo: Damaged, tmp_path: Path) -> None:
    tamper(repo.storage, repo.index_of_second, None)
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check()
    assert not report.ok
    assert all(d.snapshots == {repo.second} for d in report.damage)
    assert any("not in any index" in d.problem for d in report.damage)
    assert restore_file(repo.storage, repo.first, "a.bin", tmp_path / "a") == random_bytes(1, 100_000)


def test_garbage_in_an_index_file_is_named(repo: Damaged) -> None:
    tamper(repo.storage, repo.index_of_second, b"not an index at all" * 10)
    report = Checker(Repository.open(repo.storage, PASSPHRASE)).check()
    assert any(d.object == repo.index_of_second and "index unreadable" in d.problem for d in report.damage)


def test_rolling_windows_read_each_pack_once_per_cycle(tmp_path: Path) -> None:
    repository = small_repository(LocalStorage(tmp_path / "repo"), pack_size=4096)
    write_tree(tmp_path / "src", {f"f{i}.bin": random_bytes(i, 3000) for i in range(40)})
    backup(repository, tmp_path / "src")
    packs = [info.key for info in repository.storage.list("data/")]
    assert len(packs) > 10
    windows = [(0.0, 0.3), (0.3, 0.8), (0.8, 0.0)]  # the third wraps to the cycle's end
    read = [Checker(repository).check(read_data_window=w).packs_read for w in windows]
    assert sum(read) == len(packs)  # every pack once
    assert read[0] == sum(1 for p in packs if cycle_position(p) < 0.3)
    assert Checker(repository).check(read_data_window=(0.0, 1.0)).packs_read == len(packs)
