"""The repository on a real S3 endpoint (SeaweedFS): backup, incremental, check, prune, restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.repository.checker import Checker
from controller.repository.pruner import Pruner
from controller.repository.repository import Repository, SnapshotEntry
from controller.repository.restorer import Restorer
from controller.storage.s3 import S3Storage
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree
from tests.support.seaweedfs import S3Endpoint


def test_repository_round_trip_on_s3(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    settings = s3_endpoint.settings(prefix="hosts/a")
    repository = small_repository(S3Storage(settings), pack_size=128 * 1024)
    source = tmp_path / "src"
    write_tree(source, {f"d{i}/f{j}": random_bytes(i * 10 + j, 60_000) for i in range(4) for j in range(4)})
    first = backup(repository, source)
    state_one = tree_state(source)
    write_tree(source, {"d0/f0": random_bytes(99, 60_000)})
    second = backup(repository, source, parent=SnapshotEntry(first.id, first.snapshot))
    assert second.snapshot.summary.bytes_read == 60_000
    fresh = Repository.open(S3Storage(settings), PASSPHRASE)
    assert Checker(fresh).check(read_data_percent=100).ok
    fresh.forget(first.id)
    Pruner(fresh, now=datetime.now(UTC) + timedelta(hours=2)).prune()
    fresh = Repository.open(S3Storage(settings), PASSPHRASE)
    assert Checker(fresh).check(read_data_percent=100).ok
    Restorer(fresh).restore(fresh.load_snapshot(second.id), tmp_path / "out")
    assert tree_state(tmp_path / "out") == tree_state(source)
    assert state_one != tree_state(source)
