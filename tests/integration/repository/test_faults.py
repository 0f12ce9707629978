"""Injected storage faults: success after retries, or one clear error with the repository intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import BackupCorrupted, StorageError, StorageUnavailable
from controller.repository.archiver import Archiver, DirectorySource
from controller.repository.checker import Checker
from controller.repository.pruner import Pruner
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.local import LocalStorage
from controller.storage.memory import MemoryStorage
from controller.storage.retrying import RetryingStorage
from tests.support.fault_injecting_storage import Fault, FaultInjectingStorage
from tests.support.repository import PASSPHRASE, T0, backup, random_bytes, small_repository, tree_state, write_tree


def is_pack(key: str) -> bool:
    return key.startswith("data/")


def setup(tmp_path: Path, faults: list[Fault]) -> tuple[LocalStorage, FaultInjectingStorage, list[str]]:
    """A repository with one good snapshot; then the faults are armed."""
    local = LocalStorage(tmp_path / "repo")
    injector = FaultInjectingStorage(local)
    repository = small_repository(injector, pack_size=64 * 1024)  # type: ignore[arg-type]
    write_tree(tmp_path / "src", {f"f{i}": random_bytes(i, 50_000) for i in range(6)})
    first = backup(repository, tmp_path / "src").id
    write_tree(tmp_path / "src", {f"g{i}": random_bytes(100 + i, 50_000) for i in range(6)})
    injector.faults = faults
    return local, injector, [first]


def retrying(storage: FaultInjectingStorage, attempts: int = 5) -> RetryingStorage:
    return RetryingStorage(storage, attempts=attempts, initial_wait=0.001, max_wait=0.01)  # type: ignore[arg-type]


def assert_intact(local: LocalStorage, snapshots: list[str], tmp_path: Path) -> None:
    repository = Repository.open(local, PASSPHRASE)
    report = Checker(repository).check(read_data_percent=100)
    assert report.ok, [d.describe() for d in report.damage]
    for snapshot_id in snapshots:
        Restorer(repository).restore(repository.load_snapshot(snapshot_id), tmp_path / f"out-{snapshot_id[:6]}")


@pytest.mark.parametrize("kind", ["transient", "cut", "delay"])
def test_transient_faults_on_pack_uploads_end_in_success(tmp_path: Path, kind: str) -> None:
    local, injector, snapshots = setup(tmp_path, [Fault("save", is_pack, kind, times=3, skip=1, delay=0.05)])
    repository = Repository.open(retrying(injector), PASSPHRASE)  # type: ignore[arg-type]
    result = backup(repository, tmp_path / "src")
    assert injector.faults[0].fired == 3
    assert_intact(local, [*snapshots, result.id], tmp_path)
    Restorer(repository).restore(repository.load_snapshot(result.id), tmp_path / "latest")
    assert tree_state(tmp_path / "latest") == tree_state(tmp_path / "src")


def test_retries_are_bounded_and_end_in_a_clear_error(tmp_path: Path) -> None:
    local, injector, snapshots = setup(tmp_path, [Fault("save", is_pack, "transient", times=100)])
    repository = Repository.open(retrying(injector, attempts=3), PASSPHRASE)  # type: ignore[arg-type]
    with pytest.raises(StorageUnavailable, match="injected: saving data/"):
        backup(repository, tmp_path / "src")
    tries: dict[str, int] = {}
    for operation, key in injector.calls:
        if operation == "save" and is_pack(key):
            tries[key] = tries.get(key, 0) + 1
    assert tries and max(tries.values()) == 3  # each pack upload tried 3 times, then given up
    assert len(list(local.list("snapshots/"))) == 1
    assert_intact(local, snapshots, tmp_path)


def test_permanent_failure_is_not_retried_and_commits_nothing(tmp_path: Path) -> None:
    local, injector, snapshots = setup(tmp_path, [Fault("save", is_pack, "permanent", times=1, skip=1)])
    repository = Repository.open(retrying(injector), PASSPHRASE)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="permanent"):
        backup(repository, tmp_path / "src")
    assert injector.faults[0].fired == 1
    assert len(list(local.list("snapshots/"))) == 1
    assert_intact(local, snapshots, tmp_path)


@pytest.mark.parametrize("kind", ["flip", "truncate"])
def test_damaged_reads_are_caught_never_restored_as_data(tmp_path: Path, kind: str) -> None:
    local, injector, snapshots = setup(tmp_path, [])
    repository = Repository.open(injector, PASSPHRASE)  # type: ignore[arg-type]
    injector.faults = [Fault("load", is_pack, kind, times=100)]
    with pytest.raises(BackupCorrupted):
        Restorer(repository).restore(repository.load_snapshot(snapshots[0]), tmp_path / "bad")
    injector.faults = []
    assert_intact(local, snapshots, tmp_path)


def test_a_listing_cut_midway_aborts_prune_and_changes_nothing(tmp_path: Path) -> None:
    local, injector, snapshots = setup(tmp_path, [])
    repository = Repository.open(injector, PASSPHRASE)  # type: ignore[arg-type]
    repository.forget(snapshots[0])
    keys = sorted(i.key for i in local.list(""))
    injector.faults = [Fault("list", lambda prefix: prefix == "data/", "cut", times=1)]
    with pytest.raises(StorageUnavailable, match="connection cut"):
        Pruner(repository, now=datetime.now(UTC) + timedelta(hours=2)).prune()
    assert sorted(i.key for i in local.list("")) == keys


def test_a_listing_cut_is_retried_whole(tmp_path: Path) -> None:
    local, injector, snapshots = setup(tmp_path, [])
    repository = Repository.open(retrying(injector), PASSPHRASE)  # type: ignore[arg-type]
    repository.forget(snapshots[0])
    injector.faults = [Fault("list", lambda prefix: prefix == "data/", "cut", times=2)]
    report = Pruner(repository, now=datetime.now(UTC) + timedelta(hours=2)).prune()
    assert report.packs_deleted > 0
    assert not list(local.list("data/"))


def test_after_a_failed_upload_the_backup_stops_taking_work(tmp_path: Path) -> None:
    _, injector, _ = setup(tmp_path, [])
    write_tree(tmp_path / "src", {f"h{i}": random_bytes(200 + i, 50_000) for i in range(40)})  # ~30 packs
    injector.faults = [Fault("save", is_pack, "permanent", times=1)]
    repository = Repository.open(retrying(injector), PASSPHRASE)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="permanent"):
        backup(repository, tmp_path / "src")
    attempted = [key for operation, key in injector.calls if operation == "save" and is_pack(key)]
    baseline = FaultInjectingStorage(MemoryStorage())
    backup(small_repository(baseline, pack_size=64 * 1024), tmp_path / "src")  # type: ignore[arg-type]
    packs = [key for operation, key in baseline.calls if operation == "save" and is_pack(key)]
    assert len(attempted) <= len(packs) // 3, f"{len(attempted)} of {len(packs)} pack uploads attempted"


@pytest.mark.parametrize("transfers", [1, 4])
def test_transfers_in_flight_follow_the_setting_under_latency(tmp_path: Path, transfers: int) -> None:
    _, injector, _ = setup(tmp_path, [])
    write_tree(tmp_path / "src", {f"t{i}": random_bytes(300 + i, 60_000) for i in range(24)})
    injector.faults = [
        Fault("save", is_pack, "delay", times=10_000, delay=0.05),
        Fault("load", is_pack, "delay", times=10_000, delay=0.05),
    ]
    repository = Repository.open(injector, PASSPHRASE)  # type: ignore[arg-type]
    injector.max_in_flight = 0  # the setup's own backup used the default
    result = Archiver(repository, workers=2, uploads=transfers).run(
        [DirectorySource("", tmp_path / "src")], {}, "h", T0.isoformat()
    )
    assert injector.max_in_flight == transfers  # uploads overlap up to the setting, never beyond
    injector.max_in_flight = 0
    Restorer(repository, workers=transfers).restore(repository.load_snapshot(result.id), tmp_path / "out")
    # File content downloads overlap up to the setting; the walk may read one tree beside them.
    assert transfers <= injector.max_in_flight <= transfers + 1
