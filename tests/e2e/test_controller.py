"""The controller as a process, in real time: a one-minute schedule produces a backup
whose status lands in the policy's YAML; SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import yaml

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from tests.e2e.conftest import LIFEBOAT, Lifeboat
from tests.support.repository import write_tree


def test_a_one_minute_schedule_backs_up_within_a_minute(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = tmp_path / "etc-platform"
    write_tree(source, {"platform.conf": b"tier=demo\n"})
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{file: {tmp_path / 'pass'}}}}}\n"
    )
    (tmp_path / "pass").write_text("controller e2e passphrase\n")
    policy = lifeboat.resources / "policy.yaml"
    policy.write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: platform}\n"
        f'spec:\n  paths: [{source}]\n  schedule: "* * * * *"\n  retention: {{keepLast: 2}}\n  storage: local\n'
    )
    process = subprocess.Popen([LIFEBOAT, "controller"], env=lifeboat.env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90  # the next full minute, plus the backup itself
        status: dict = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline and process.poll() is None:
            status = (yaml.safe_load(policy.read_text()) or {}).get("status") or {}
            if status.get("lastBackup"):
                break
            time.sleep(0.5)
        assert status.get("lastBackup"), f"no backup recorded in the status: {status}"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    catalog = Catalog(f"sqlite:///{lifeboat.home / 'catalog.db'}")
    (row,) = catalog.list_backups()
    assert row.status == BackupStatus.COMPLETED and row.backup_id == status["lastBackup"]["id"]
    assert f"backup {row.backup_id} of policy platform completed" in err
    catalog.close()
