"""Restore resources through the controller on the real Docker engine: applied once, status
in the YAML, never run twice; and a controller killed mid-restore leaves the app running."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from docker import DockerClient

from controller.apps.docker_api import connect
from controller.catalog.catalog import Catalog
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.e2e.conftest import LIFEBOAT
from tests.support.docker_apps import TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes
from tests.support.runs import back_up

PASSPHRASE = "restore resource passphrase"


def setup(tmp_path: Path, client: DockerClient, made: list[TestApp]) -> tuple[Path, Catalog, TestApp, str]:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{env: RESTORE_PASS}}}}\n"
    )
    app = wordpress_like(client)
    made.append(app)
    mariadb_sql(app, "CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2);")
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    repository = Repository.init(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode(), datetime.now(UTC), "h", "test")
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="local"), client).backup_id
    return resources, catalog, app, backup_id


def restore_yaml(resources: Path, backup_id: str) -> Path:
    path = resources / "restore.yaml"
    path.write_text(
        "# Put the app back as it was.\napiVersion: lifeboat.io/v1alpha1\nkind: Restore\n"
        f"metadata: {{name: put-back}}\nspec:\n  backup: {backup_id}\n"
    )
    return path


def test_a_restore_resource_runs_once_and_reports_in_its_yaml(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources, catalog, app, backup_id = setup(tmp_path, docker_client, made_apps)
    mariadb_sql(app, "DROP TABLE t")
    path = restore_yaml(resources, backup_id)
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, connect, queue, environ={"RESTORE_PASS": PASSPHRASE})
    reconciler.pass_once()
    assert yaml.safe_load(path.read_text())["status"]["phase"] in ("Pending", "Running", "Succeeded")
    assert queue.wait_idle(300)
    reconciler.pass_once()
    status = yaml.safe_load(path.read_text())["status"]
    assert status["phase"] == "Succeeded", status
    assert status["backupId"] == backup_id and status["safetyBackupId"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Succeeded": "True"}
    assert mariadb_sql(app, "SELECT a FROM t ORDER BY a") == "1\n2\n"
    assert path.read_text().startswith("# Put the app back as it was.\n")
    mariadb_sql(app, "DROP TABLE t")
    reconciler.pass_once()  # a finished Restore never runs again
    assert queue.wait_idle(60)
    assert len(catalog.restore_runs("put-back")) == 1
    assert "t\n" not in mariadb_sql(app, "SHOW TABLES")
    queue.shutdown()


def test_a_controller_killed_mid_restore_leaves_the_app_running_and_never_restores_twice(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources, catalog, app, _ = setup(tmp_path, docker_client, made_apps)
    for number in range(5):  # enough data that the restore keeps the app stopped for a while
        (app.mountpoint("uploads") / f"big{number}.bin").write_bytes(random_bytes(20 + number, 40_000_000))
    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="local"), docker_client).backup_id
    for number in range(5):
        (app.mountpoint("uploads") / f"big{number}.bin").unlink()
    path = restore_yaml(resources, backup_id)
    env = {
        "PATH": "/usr/bin:/bin",
        "RESTORE_PASS": PASSPHRASE,
        "LIFEBOAT_RESOURCES": str(resources),
        "LIFEBOAT_CATALOG": f"sqlite:///{tmp_path / 'catalog.db'}",
        "HOME": str(tmp_path),
        "LIFEBOAT_API_LISTEN": "127.0.0.1:0",  # any free port: the API is not what is tested here
    }
    controller = subprocess.Popen([LIFEBOAT, "controller"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    # Past the safety backup (which pauses the app) to the restore proper, which stops it.
    while app.state("web") != "exited" and controller.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert controller.poll() is None, "the controller ended before the restore stopped the app"
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    assert app.state("web") == "exited"

    restarted = subprocess.run([LIFEBOAT, "controller", "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr
    assert app.state("web") == "running" and app.state("db") == "running"
    (run,) = catalog.restore_runs("put-back")
    status = yaml.safe_load(path.read_text())["status"]
    assert status["phase"] == "Failed" and "interrupted by a controller restart" in status["message"]
    assert status["safetyBackupId"] and status["safetyBackupId"] in status["message"]
    assert run.phase == "Failed"
