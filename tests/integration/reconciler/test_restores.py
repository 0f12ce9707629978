"""Restore resources through the controller on the real Docker engine: applied once, status
in the YAML, never run twice; and a restore killed while it writes (the controller's or the
CLI's) is finished before the app starts again: the app never runs on a mix."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from docker import DockerClient

from controller.apps.docker_api import connect
from controller.catalog.catalog import Catalog
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.runtime import RestoreStep
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.e2e.conftest import LIFEBOAT
from tests.support.docker_apps import TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes, tree_state
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
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp], caplog: pytest.LogCaptureFixture
) -> None:
    resources, catalog, app, backup_id = setup(tmp_path, docker_client, made_apps)
    mariadb_sql(app, "DROP TABLE t")
    path = restore_yaml(resources, backup_id)
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, connect, queue, environ={"RESTORE_PASS": PASSPHRASE})
    steps: list[RestoreStep] = []
    reconciler.runtime.restores.watch = lambda _run, step: steps.append(step)  # what the API and status show
    with caplog.at_level(logging.INFO, logger="controller.reconciler.restore_run"):
        reconciler.pass_once()
        assert yaml.safe_load(path.read_text())["status"]["phase"] in ("Pending", "Running", "Succeeded")
        assert queue.wait_idle(300)
    phases = list(dict.fromkeys(step.phase for step in steps))
    assert phases == [
        "planning",
        "safety backup",
        "stopping the app",
        "writing volumes/uploads",
        "checking",
        "loading databases/db.sql",
        "checking databases/db.sql",
        "starting the app",
    ]
    logged = [r.getMessage() for r in caplog.records]
    assert all(any(line.endswith(f": {phase}") for line in logged) for phase in phases)  # a log line per phase
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


def big_files_then_backup(tmp_path: Path, client: DockerClient, catalog: Catalog, app: TestApp) -> tuple[str, dict]:  # type: ignore[type-arg]
    """Enough data that the restore keeps the app stopped for a while; the files are gone
    again afterwards, so a restore has 200 MB to write. Returns (backup id, its uploads)."""
    uploads = app.mountpoint("uploads")
    for number in range(5):
        (uploads / f"big{number}.bin").write_bytes(random_bytes(20 + number, 40_000_000))
    backed_up = tree_state(uploads)
    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="local"), client).backup_id
    for number in range(5):
        (uploads / f"big{number}.bin").unlink()
    return backup_id, backed_up


def lifeboat_env(tmp_path: Path, resources: Path) -> dict[str, str]:
    """The `lifeboat` processes' environment: this test's resources and catalog."""
    return {
        "PATH": "/usr/bin:/bin",
        "RESTORE_PASS": PASSPHRASE,
        "LIFEBOAT_PASSPHRASE": PASSPHRASE,
        "LIFEBOAT_RESOURCES": str(resources),
        "LIFEBOAT_CATALOG": f"sqlite:///{tmp_path / 'catalog.db'}",
        "HOME": str(tmp_path),
        "LIFEBOAT_API_LISTEN": "127.0.0.1:0",  # any free port: the API is not what is tested here
    }


def kill_while_writing(process: subprocess.Popen[str], app: TestApp) -> None:
    """SIGKILL once the restore stopped the app (past the safety backup, which only pauses
    it) and has written part of the data."""
    deadline = time.monotonic() + 240
    while app.state("web") != "exited" and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    uploads = app.mountpoint("uploads")
    while process.poll() is None and time.monotonic() < deadline:
        written = sum(p.stat().st_blocks for p in uploads.glob("big*.bin")) * 512
        if written > 10_000_000:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the restore ended before it was killed mid-write"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert app.state("web") == "exited"  # stopped, on half-written data


def test_a_controller_killed_mid_restore_finishes_it_before_the_app_starts_and_never_restores_twice(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources, catalog, app, _ = setup(tmp_path, docker_client, made_apps)
    backup_id, backed_up = big_files_then_backup(tmp_path, docker_client, catalog, app)
    path = restore_yaml(resources, backup_id)
    env = lifeboat_env(tmp_path, resources)
    controller = subprocess.Popen([LIFEBOAT, "controller"], env=env, stderr=subprocess.DEVNULL, text=True)
    kill_while_writing(controller, app)

    restarted = subprocess.run([LIFEBOAT, "controller", "--once"], env=env, capture_output=True, text=True, timeout=300)

    assert restarted.returncode == 0, restarted.stderr
    assert app.state("web") == "running" and app.state("db") == "running"
    assert tree_state(app.mountpoint("uploads")) == backed_up  # the backup, whole: never a mix
    assert mariadb_sql(app, "SELECT a FROM t ORDER BY a") == "1\n2\n"
    (run,) = catalog.restore_runs("put-back")  # finished, not run again
    status = yaml.safe_load(path.read_text())["status"]
    assert status["phase"] == "Succeeded" and run.phase == "Succeeded"
    assert "interrupted while writing the app's data; recovery applied the restore again" in status["message"]
    assert status["safetyBackupId"]


def test_a_cli_restore_killed_mid_write_is_finished_by_repair(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources, catalog, app, _ = setup(tmp_path, docker_client, made_apps)
    backup_id, backed_up = big_files_then_backup(tmp_path, docker_client, catalog, app)
    env = lifeboat_env(tmp_path, resources)
    restoring = subprocess.Popen([LIFEBOAT, "restore", backup_id], env=env, stderr=subprocess.DEVNULL, text=True)
    kill_while_writing(restoring, app)
    listed = subprocess.run([LIFEBOAT, "apps"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    # `apps` repairs too, but never starts an app whose restore is unfinished: it finishes it first.
    assert "recovery applied the restore again" in listed.stderr

    repaired = subprocess.run([LIFEBOAT, "repair"], env=env, capture_output=True, text=True, timeout=300)

    assert repaired.returncode == 0 and repaired.stdout.strip() == "nothing to repair", repaired.stdout
    assert app.state("web") == "running" and app.state("db") == "running"
    assert tree_state(app.mountpoint("uploads")) == backed_up
    (run,) = catalog.restore_runs_of_backup(backup_id)
    assert run.phase == "Succeeded" and run.stage == "writing" and run.safety_backup_id


def test_a_dry_run_restore_says_what_would_change_in_its_status_and_changes_nothing(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources, catalog, app, backup_id = setup(tmp_path, docker_client, made_apps)
    mariadb_sql(app, "DROP TABLE t")
    (app.mountpoint("uploads") / "extra.txt").write_text("written after the backup\n")
    path = resources / "preview.yaml"
    path.write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: Restore\n"
        f"metadata: {{name: preview}}\nspec:\n  backup: {backup_id}\n  dryRun: true\n"
    )
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, connect, queue, environ={"RESTORE_PASS": PASSPHRASE})
    reconciler.pass_once()
    assert queue.wait_idle(120)
    reconciler.pass_once()

    status = yaml.safe_load(path.read_text())["status"]
    assert status["phase"] == "Succeeded", status
    assert status["message"].startswith(f"dry run, nothing was changed: restore of backup {backup_id} into app")
    assert "volumes/uploads" in status["message"] and "1 to delete (extra.txt)" in status["message"]
    assert "databases/db.sql: load into" in status["message"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [("Succeeded", "True", "DryRun")]
    assert (app.mountpoint("uploads") / "extra.txt").exists() and "t\n" not in mariadb_sql(app, "SHOW TABLES")
    assert catalog.restore_runs("preview") == [] and len(catalog.list_backups()) == 1  # no run, no safety backup
    reconciler.pass_once()  # finished: never again
    assert queue.wait_idle(60) and yaml.safe_load(path.read_text())["status"] == status
    queue.shutdown()
