"""A backup into a replicated SeaweedFS cluster while one volume server restarts: it keeps going,
or fails cleanly and resumes; either way every committed snapshot restores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.errors import LifeboatError
from controller.repository.checker import Checker
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.retrying import RetryingStorage
from controller.storage.s3 import S3Settings, S3Storage
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree
from tests.support.required import skip_or_fail
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedCluster, seaweedfs_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[SeaweedCluster]:
    try:
        with seaweedfs_cluster(volumes=2) as running:
            yield running
    except (FileNotFoundError, RuntimeError) as err:
        skip_or_fail("s3", str(err)[-500:])


def test_backup_survives_or_resumes_when_a_volume_server_stops(cluster: SeaweedCluster, tmp_path: Path) -> None:
    settings = S3Settings(
        bucket=cluster.endpoint.new_bucket(),
        endpoint=cluster.endpoint.url,
        region="us-east-1",
        path_style=True,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )

    def storage() -> RetryingStorage:
        return RetryingStorage(S3Storage(settings), attempts=8, initial_wait=0.2, max_wait=2.0)

    repository = small_repository(storage(), pack_size=512 * 1024)  # type: ignore[arg-type]
    source = tmp_path / "src"
    write_tree(source, {f"d{i}/f{j}.bin": random_bytes(i * 100 + j, 300_000) for i in range(8) for j in range(8)})
    # The volume server goes away mid-backup and comes back 5 s later (a restart; a longer
    # outage only adds SeaweedFS's own upload timeouts to the test's time).
    stopper = threading.Timer(0.5, cluster.stop, args=("volume1",))
    restarter = threading.Timer(5.5, cluster.start, args=("volume1",))
    stopper.start()
    restarter.start()
    outcome = "completed"
    try:
        result = backup(repository, source)
    except LifeboatError as err:
        outcome = f"failed cleanly: {err}"
        result = None
    stopper.join()
    restarter.join()
    reopened = Repository.open(storage(), PASSPHRASE)  # type: ignore[arg-type]
    if result is None:
        assert reopened.snapshots() == []  # nothing half-written is visible as a snapshot
        result = backup(reopened, source)  # resumes: checkpointed packs are not uploaded again
        assert result.snapshot.summary.bytes_added < result.snapshot.summary.bytes
    print(f"volume server stopped mid-backup: {outcome}")
    reopened = Repository.open(storage(), PASSPHRASE)  # type: ignore[arg-type]
    assert Checker(reopened).check(read_data_percent=100).ok
    Restorer(reopened).restore(reopened.load_snapshot(result.id), tmp_path / "out")
    assert tree_state(tmp_path / "out") == tree_state(source)
