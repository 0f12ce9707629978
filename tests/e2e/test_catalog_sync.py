"""`lifeboat catalog sync` as a process: a lost catalog comes back from the repository with
the same backup ids, policies and sizes; snapshots forgotten elsewhere leave it; an
incomplete snapshot comes back failed, never completed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from controller.reconciler.backup_run import BackupRequest
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.e2e.conftest import Lifeboat
from tests.support.repository import write_tree
from tests.support.runs import back_up

PASSPHRASE = "catalog sync passphrase"
FIELDS = ("backup_id", "app_id", "policy", "backup_type", "snapshot_id", "parent_id", "size_bytes", "files")


def test_a_lost_catalog_is_rebuilt_from_the_repository(
    lifeboat: Lifeboat, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: offsite}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{env: SYNC_PASS}}}}\n"
    )
    monkeypatch.setenv("SYNC_PASS", PASSPHRASE)
    source = tmp_path / "srv"
    write_tree(source, {"a.txt": b"one\n", "b/c.txt": b"two\n" * 100})
    repository = Repository.init(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode(), datetime.now(UTC), "a", "t")
    host_a = Catalog(f"sqlite:///{tmp_path / 'host-a.db'}")
    taken = []
    for number in range(3):
        (source / f"day{number}.txt").write_text(str(number))
        request = BackupRequest(app=None, storage="offsite", policy="platform", paths=[str(source)])
        taken.append(back_up(host_a, repository, request))
    host_a.close()
    # A snapshot recording a file it could not read, and one with only a note: the first is incomplete.
    latest = repository.load_snapshot(taken[-1].snapshot_id or "")
    for backup_id, warning in (("partial", "b/c.txt: changed while read, twice"), ("noted", "skipped socket x")):
        repository.save_snapshot(
            dataclasses.replace(latest, tags={**latest.tags, "backup": backup_id}, warnings=[warning])
        )

    synced = lifeboat("catalog", "sync", "-o", "json")  # host B: same storage, empty catalog
    assert synced.code == 0, synced.err
    assert json.loads(synced.out) == [{"storage": "offsite", "added": 5, "removed": 0, "unchanged": 0}]
    host_b = Catalog(f"sqlite:///{lifeboat.home / 'catalog.db'}")
    rebuilt = {r.backup_id: r for r in host_b.list_backups()}
    for row in taken:
        again = rebuilt[row.backup_id]
        assert [getattr(again, f) for f in FIELDS] == [getattr(row, f) for f in FIELDS]
        assert again.status == BackupStatus.COMPLETED and again.created_at == row.created_at
    partial, noted = rebuilt["partial"], rebuilt["noted"]
    assert partial.status == BackupStatus.FAILED and "changed while read" in (partial.error_message or "")
    assert noted.status == BackupStatus.COMPLETED
    listed = lifeboat("get", "backups", "-o", "json")
    assert {b["backup_id"] for b in json.loads(listed.out)} == {r.backup_id for r in taken} | {"partial", "noted"}

    assert lifeboat("catalog", "sync").out.split()[-4:] == ["offsite", "0", "0", "5"]  # nothing new
    repository.forget(taken[0].snapshot_id or "")  # another host's retention, say
    again = lifeboat("catalog", "sync", "--storage", "offsite", "-o", "json")
    assert json.loads(again.out) == [{"storage": "offsite", "added": 0, "removed": 1, "unchanged": 4}]
    assert taken[0].backup_id not in {r.backup_id for r in host_b.list_backups()}
    assert lifeboat("catalog", "sync", "--storage", "nowhere").code == 1
    host_b.close()
