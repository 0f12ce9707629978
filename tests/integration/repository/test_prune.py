"""Forget and prune: space comes back, kept snapshots restore byte-identically, check is clean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.repository.checker import Checker
from controller.repository.pruner import Pruner
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.base import Storage
from tests.integration.repository.conftest import abandon_a_write, abandoned_writes, tamper
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree

LATER = datetime.now(UTC) + timedelta(hours=2)  # local objects carry real mtimes: past the grace period


def total_pack_bytes(storage: Storage) -> int:
    return sum(i.size for i in storage.list("data/"))


def test_forget_then_prune_frees_space_and_keeps_the_rest_intact(tmp_path: Path, storage: Storage) -> None:
    repository = small_repository(storage, pack_size=64 * 1024)
    source = tmp_path / "src"
    states, ids = [], []
    for day in range(5):
        write_tree(source, {f"day{day}.bin": random_bytes(day, 150_000), "shared.txt": b"same\n" * 1000})
        if day >= 2:
            (source / f"day{day - 2}.bin").unlink()  # each snapshot holds two days of files
        ids.append(backup(repository, source).id)
        states.append(tree_state(source))
    before = total_pack_bytes(storage)
    for snapshot_id in ids[:3]:
        repository.forget(snapshot_id)
    report = Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune()
    assert report.packs_deleted > 0 and report.bytes_freed > 0
    assert total_pack_bytes(storage) < before * 0.7
    fresh = Repository.open(storage, PASSPHRASE)
    assert Checker(fresh).check(read_data_percent=100).ok
    for snapshot_id, state in zip(ids[3:], states[3:], strict=True):
        out = tmp_path / f"out-{snapshot_id[:6]}"
        Restorer(fresh).restore(fresh.load_snapshot(snapshot_id), out)
        assert tree_state(out) == state


def test_mostly_garbage_packs_are_repacked(tmp_path: Path, storage: Storage) -> None:
    repository = small_repository(storage, pack_size=1024 * 1024)  # one pack holds everything
    source = tmp_path / "src"
    write_tree(source, {"big.bin": random_bytes(1, 400_000), "small.bin": random_bytes(2, 20_000)})
    first = backup(repository, source)
    (source / "big.bin").unlink()
    second = backup(repository, source)
    repository.forget(first.id)
    report = Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune()
    assert report.packs_repacked >= 1
    assert total_pack_bytes(storage) < 100_000
    fresh = Repository.open(storage, PASSPHRASE)
    assert Checker(fresh).check(read_data_percent=100).ok
    Restorer(fresh).restore(fresh.load_snapshot(second.id), tmp_path / "out")
    assert (tmp_path / "out" / "small.bin").read_bytes() == random_bytes(2, 20_000)


def test_prune_removes_writes_abandoned_by_killed_processes_after_the_grace_period(
    tmp_path: Path, storage: Storage
) -> None:
    repository = small_repository(storage)
    write_tree(tmp_path / "src", {"a": random_bytes(1, 50_000)})
    backup(repository, tmp_path / "src")
    abandon_a_write(storage, "data/ab/" + "ab" * 32)
    assert Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune(dry_run=True).incomplete_writes_removed == 0
    young = Pruner(Repository.open(storage, PASSPHRASE), now=datetime.now(UTC)).prune()
    assert young.incomplete_writes_removed == 0 and abandoned_writes(storage) == 1  # may still be running
    report = Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune()
    assert report.incomplete_writes_removed == 1 and abandoned_writes(storage) == 0
    assert Checker(Repository.open(storage, PASSPHRASE)).check(read_data_percent=100).ok


def test_dry_run_changes_nothing(tmp_path: Path, storage: Storage) -> None:
    repository = small_repository(storage)
    write_tree(tmp_path / "src", {"a": random_bytes(1, 50_000)})
    repository.forget(backup(repository, tmp_path / "src").id)
    keys = sorted(i.key for i in storage.list(""))
    report = Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune(dry_run=True)
    assert report.packs_deleted > 0
    assert sorted(i.key for i in storage.list("")) == keys


def test_prune_aborts_when_a_snapshot_tree_is_unreadable(tmp_path: Path, storage: Storage) -> None:
    repository = small_repository(storage)
    write_tree(tmp_path / "src", {"a": random_bytes(1, 50_000)})
    backup(repository, tmp_path / "src")
    tree_pack = min(storage.list("data/"), key=lambda i: i.size).key
    tamper(storage, tree_pack, None)
    keys = sorted(i.key for i in storage.list(""))
    try:
        Pruner(Repository.open(storage, PASSPHRASE), now=LATER).prune()
    except Exception as err:
        assert "prune aborted" in str(err)
    else:
        raise AssertionError("prune ran on an inconsistent repository")
    assert sorted(i.key for i in storage.list("")) == keys
