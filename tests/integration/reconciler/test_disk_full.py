"""A backup that fills its storage's disk gives the space back: on a real, tiny tmpfs the
backup fails saying how much was needed and where, the disk's usage is what it was, and
the next (small) backup succeeds. Before, every later backup failed with "No space left"."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from controller.errors import StorageError, StorageFull
from controller.reconciler.backup_run import BackupRequest
from controller.storage.local import LocalStorage
from tests.support.repository import random_bytes, small_repository, write_tree
from tests.support.runs import back_up


def files_in(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_a_backup_that_fills_the_disk_gives_the_space_back_and_the_next_one_succeeds(
    tmp_path: Path, tiny_disk: Path
) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    repository = small_repository(LocalStorage(tiny_disk / "repo"))
    before_files, before_used = files_in(tiny_disk), shutil.disk_usage(tiny_disk).used
    source = tmp_path / "srv"
    write_tree(source, {f"photo{i}.jpg": random_bytes(40 + i, 400_000) for i in range(10)})  # 4 MB, incompressible
    request = BackupRequest(app=None, storage="tiny", policy="platform", paths=[str(source)])

    with pytest.raises(StorageFull) as caught:
        back_up(catalog, repository, request)

    message = str(caught.value)
    assert message.startswith(f"no space left in {tiny_disk / 'repo'}: saving data/")
    assert "bytes, " in message and "bytes are free" in message and "this backup wrote were removed" in message
    assert files_in(tiny_disk) == before_files  # no pack, no checkpoint index, no temporary left
    assert shutil.disk_usage(tiny_disk).used <= before_used + 64 * 1024  # directories aside, the space is back
    (failed,) = catalog.list_backups()
    assert failed.status == BackupStatus.FAILED and failed.error_code == "STORAGE_FULL"

    for path in source.iterdir():
        path.unlink()
    write_tree(source, {"config.yaml": b"small: true\n"})
    row = back_up(catalog, repository, request)
    assert row.status == BackupStatus.COMPLETED
    catalog.close()


def test_a_backup_whose_scratch_disk_fills_fails_naming_it_and_gives_the_space_back(
    tmp_path: Path, tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packs fill unlinked files beside the local cache. When that disk is full the backup
    fails with one line naming the folder and what to do (an OSError there would have
    passed for the files being read as unreadable, and the backup gone on), no snapshot
    is made, and the space is back."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tiny_disk))
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    repository = small_repository(LocalStorage(tmp_path / "repo"), pack_size=4 * 1024 * 1024)  # more than the disk
    source = tmp_path / "srv"
    write_tree(source, {f"photo{i}.jpg": random_bytes(60 + i, 400_000) for i in range(10)})  # 4 MB, incompressible
    request = BackupRequest(app=None, storage="tiny", policy="platform", paths=[str(source)])

    with pytest.raises(StorageError) as caught:
        back_up(catalog, repository, request)

    assert str(caught.value) == (
        f"packs being filled (a few pack sizes) cannot be kept in {tiny_disk}: No space left on device; "
        "free room there or set LIFEBOAT_CACHE_DIR to a folder on a disk with room"
    )
    assert shutil.disk_usage(tiny_disk).used <= 64 * 1024
    assert not list(repository.storage.list("snapshots/"))
    (failed,) = catalog.list_backups()
    assert failed.status == BackupStatus.FAILED
    catalog.close()
