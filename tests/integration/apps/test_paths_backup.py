"""Host-path backups (no Docker): catalog rows, items, and which parent each backup type uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus, ItemKind
from controller.errors import BackupCreateFailed, BackupNotFound, NothingToBackUp
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest, resolve_backup
from controller.repository.repository import Repository
from controller.resources.backup_policy import BackupType
from tests.support.repository import T0, random_bytes, write_tree
from tests.support.runs import back_up


def run(catalog: Catalog, repository: Repository, source: Path, backup_type: BackupType, minute: int) -> str:
    request = BackupRequest(app=None, storage="test", policy="platform", paths=[str(source)], backup_type=backup_type)
    clock = lambda: T0 + timedelta(minutes=minute)  # noqa: E731
    return back_up(catalog, repository, request, clock=clock).backup_id


def test_full_incremental_and_differential_pick_their_parents(
    tmp_path: Path, catalog: Catalog, repository: Repository
) -> None:
    source = tmp_path / "etc-platform"
    write_tree(source, {"a.conf": b"a=1\n", "big.bin": random_bytes(1, 200_000)})
    full = run(catalog, repository, source, BackupType.FULL, 0)
    (source / "b.conf").write_text("b=2\n")
    incremental = run(catalog, repository, source, BackupType.INCREMENTAL, 1)
    (source / "c.conf").write_text("c=3\n")
    differential = run(catalog, repository, source, BackupType.DIFFERENTIAL, 2)

    rows = {row.backup_id: row for row in catalog.list_backups()}
    snapshot_of = {backup_id: rows[backup_id].snapshot_id for backup_id in rows}
    assert rows[full].parent_id is None
    assert rows[incremental].parent_id == snapshot_of[full]
    assert rows[differential].parent_id == snapshot_of[full]  # the last full, not the incremental
    assert all(row.status == BackupStatus.COMPLETED for row in rows.values())
    assert rows[incremental].added_bytes < 50_000  # big.bin was not stored again
    (item,) = catalog.items_of(differential)
    assert (item.kind, item.name, item.files) == (ItemKind.PATH, f"paths/{str(source).strip('/')}", 4)


def test_an_incremental_with_nothing_to_compare_with_is_recorded_as_full(
    tmp_path: Path, catalog: Catalog, repository: Repository
) -> None:
    source = tmp_path / "etc-platform"
    write_tree(source, {"a.conf": b"a=1\n"})
    first = run(catalog, repository, source, BackupType.INCREMENTAL, 0)
    second = run(catalog, repository, source, BackupType.INCREMENTAL, 1)
    rows = {row.backup_id: row for row in catalog.list_backups()}
    assert (rows[first].backup_type, rows[second].backup_type) == ("full", "incremental")
    tags = {e.snapshot.tags["backup"]: e.snapshot.tags["type"] for e in repository.snapshots()}
    assert tags == {first: "full", second: "incremental"}  # the repository says the same (catalog sync)


def test_nothing_to_back_up_is_a_clear_failure(catalog: Catalog, repository: Repository) -> None:
    with pytest.raises(NothingToBackUp, match="nothing to back up: no app and no paths"):
        back_up(catalog, repository, BackupRequest(app=None, storage="test"))
    (row,) = catalog.list_backups()
    assert row.status == BackupStatus.FAILED and row.error_code == "BACKUP_CREATE_FAILED"


def test_point_in_time_picks_the_latest_completed_backup_at_or_before_it(
    tmp_path: Path, catalog: Catalog, repository: Repository
) -> None:
    source = tmp_path / "etc-platform"
    write_tree(source, {"a.conf": b"a=1\n"})
    first = run(catalog, repository, source, BackupType.FULL, 0)
    second = run(catalog, repository, source, BackupType.INCREMENTAL, 10)
    (source / "a.conf").rename(tmp_path / "a.conf")
    source.rmdir()  # the third backup fails: its path is gone
    with pytest.raises(BackupCreateFailed, match=f"path {source} .in the policy's paths. is not a directory"):
        run(catalog, repository, source, BackupType.INCREMENTAL, 20)

    def at(moment: datetime) -> str:
        return resolve_backup(catalog, RestoreRequest(policy="platform", point_in_time=moment), T0).backup_id

    assert at(T0 + timedelta(minutes=9)) == first
    assert at(T0 + timedelta(minutes=10)) == second
    assert at(T0 + timedelta(days=1)) == second  # not the failed one
    with pytest.raises(BackupNotFound, match="policy 'platform' has no completed backup at or before 2025"):
        at(T0 - timedelta(days=400))
