"""A controller pass costs the storage a constant number of requests, whatever the repository
holds: status comes from the catalog and from sizes measured after writes, and no snapshot
is read. (Before, every pass listed and decrypted every snapshot: one GET each on S3.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import yaml

from controller.catalog.catalog import Catalog
from controller.errors import DockerUnavailable
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.storage_factory import storage_for_resource
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.resources.backup_storage import BackupStorage
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from tests.support.repository import write_tree
from tests.support.runs import back_up
from tests.support.storage_wrappers import CountingStorage

PASSPHRASE = "storage requests passphrase"


def no_docker() -> None:
    raise DockerUnavailable("no Docker in this test")


def repository_with_snapshots(root: Path, catalog: Catalog, count: int) -> None:
    """One real backup, then count - 1 snapshots like it (each its own object, as retention keeps them)."""
    repository = Repository.init(LocalStorage(root / "repo"), PASSPHRASE.encode(), datetime.now(UTC), "h", "t")
    write_tree(root / "source", {"a.conf": b"a=1\n"})
    request = BackupRequest(app=None, storage="local", policy="platform", paths=[str(root / "source")])
    first = repository.load_snapshot(back_up(catalog, repository, request).snapshot_id or "")
    for number in range(1, count):
        repository.save_snapshot(dataclasses.replace(first, tags={**first.tags, "backup": f"copy-{number}"}))


def requests_of_a_steady_pass(root: Path, snapshots: int) -> CountingStorage:
    resources = root / "resources"
    resources.mkdir(parents=True)
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {root / 'repo'}}}\n  encryption: {{passphrase: {{env: REQUESTS_PASS}}}}\n"
    )
    catalog = Catalog(f"sqlite:///{root / 'catalog.db'}")
    repository_with_snapshots(root, catalog, snapshots)
    counted: list[CountingStorage] = []

    def counting(storage: BackupStorage, environ: Mapping[str, str]) -> Storage:
        counted.append(CountingStorage(storage_for_resource(storage, environ)))
        return counted[-1]

    queue = WorkQueue(1)
    reconciler = Reconciler(
        resources, catalog, no_docker, queue, environ={"REQUESTS_PASS": PASSPHRASE}, storage_factory=counting
    )  # type: ignore[arg-type]
    reconciler.pass_once()  # opens the repository (key derivation) and measures it once
    first = len(counted)
    reconciler.pass_once()
    queue.shutdown()
    catalog.close()
    status = yaml.safe_load((resources / "storage.yaml").read_text())["status"]
    assert status["reachable"] is True and status["sizeBytes"] > 0 and status["snapshots"] == 1
    steady = counted[first:]
    total = CountingStorage(LocalStorage(root / "unused"))
    for storage in steady:
        total.requests.update(storage.requests)
        total.loaded += storage.loaded
    return total


def test_a_pass_over_2000_snapshots_makes_as_few_requests_as_over_20_and_loads_no_snapshot(tmp_path: Path) -> None:
    small = requests_of_a_steady_pass(tmp_path / "small", 20)
    large = requests_of_a_steady_pass(tmp_path / "large", 2000)
    print(
        f"\nstorage requests of one controller pass: 20 snapshots {dict(small.requests)}, "
        f"2000 snapshots {dict(large.requests)}"
    )
    assert large.requests == small.requests
    assert sum(large.requests.values()) <= 2, large.requests  # the config, read with the cached key
    assert not [key for key in large.loaded if key.startswith("snapshots/")]
