"""`lifeboat apps`, `backup APP`, `restore BACKUP_ID` and `repair` as processes, on the real
Docker engine; a SIGKILL while the app is stopped is repaired by the next invocation."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import yaml
from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from tests.e2e.conftest import LIFEBOAT, Lifeboat, api_process
from tests.support.docker_apps import BUSYBOX, IDLE, TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes, tree_state

PASSPHRASE = "e2e apps passphrase"


@pytest.fixture
def apps_env(lifeboat: Lifeboat, monkeypatch: pytest.MonkeyPatch, docker_client: DockerClient) -> Lifeboat:
    """A resources directory with a local BackupStorage, its repository initialised, and the
    Docker engine up (or the test skipped)."""
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {lifeboat.home / 'repo'}}}\n"
        "  encryption: {passphrase: {env: APPS_TEST_PASSPHRASE}}\n"
    )
    monkeypatch.setenv("APPS_TEST_PASSPHRASE", PASSPHRASE)  # the runner passes the environment on
    assert lifeboat("repo", "--storage", "local", "init").code == 0
    return lifeboat


@pytest.fixture
def app(docker_client: DockerClient) -> Iterator[TestApp]:
    made = wordpress_like(docker_client)
    yield made
    made.remove()


def test_apps_backup_restore_through_the_cli(apps_env: Lifeboat, app: TestApp) -> None:
    lifeboat = apps_env
    (app.mountpoint("uploads") / "logo.png").write_bytes(random_bytes(3, 50_000))
    mariadb_sql(app, "CREATE TABLE t (a INT); INSERT INTO t VALUES (1), (2);")

    listed = lifeboat("apps", app.name, "-o", "json")
    assert listed.code == 0, listed.err
    (info,) = json.loads(listed.out)
    assert info["volumes"] == ["uploads"] and info["databases"] == [{"service": "db", "engine": "mariadb"}]

    made = lifeboat("backup", app.name, "--storage", "local", "-o", "json")
    assert made.code == 0, made.err
    backup_id = json.loads(made.out)["backup"]["backup_id"]
    described = lifeboat("describe", "backup", backup_id, "-o", "json")
    assert described.code == 0, described.err
    items = {item["name"]: item for item in json.loads(described.out)["items"]}
    assert (items["databases/db.sql"]["tables"], items["databases/db.sql"]["rows"]) == (1, 2)  # counted in the dump
    assert items["volumes/uploads"]["files"] == 1 and items["volumes/uploads"]["bytes"] == 50_000
    shown = lifeboat("describe", "backup", backup_id)
    assert "TABLES" in shown.out and "databases/db.sql" in shown.out
    one = lifeboat("restore", backup_id, "--target", str(lifeboat.home / "one"), "--path", "volumes/uploads/logo.png")
    assert one.code == 0, one.err  # one file of an app backup, in one command, no app touched
    assert (lifeboat.home / "one" / "logo.png").read_bytes() == random_bytes(3, 50_000)
    mariadb_sql(app, "DROP TABLE t")
    (app.mountpoint("uploads") / "logo.png").unlink()

    restored = lifeboat("restore", backup_id, "-o", "json")
    assert restored.code == 0, restored.err
    run = json.loads(restored.out)
    assert run["phase"] == "Succeeded"
    # The restore is an object: found by the id it printed, like a Restore resource.
    restores = lifeboat("get", "restores")
    assert restores.out.splitlines()[0].split() == ["NAME", "BACKUP", "TARGET", "PHASE", "MESSAGE"]
    assert any(line.split()[:4] == [run["id"], backup_id, app.name, "Succeeded"] for line in restores.out.splitlines())
    described_run = yaml.safe_load(lifeboat("describe", "restore", run["id"]).out)
    assert described_run["kind"] == "RestoreRun" and described_run["safety_backup_id"] == run["safety_backup_id"]
    assert any(e["reason"] == "RestoreSucceeded" for e in described_run["events"])
    assert "request" not in described_run  # what recovery would re-apply is not for display
    key = lifeboat("apikey", "create", "reader", "--read-only").out.strip()
    with api_process(lifeboat, lifeboat.home / "api.log") as (_, url):
        found = httpx.get(f"{url}/api/v1/restores/{run['id']}", headers={"X-API-Key": key})
    assert found.status_code == 200, found.text
    assert (found.json()["data"]["phase"], found.json()["data"]["backup_id"]) == ("Succeeded", backup_id)
    listed = lifeboat("get", "backups", "--app", app.name, "--status", "completed", "--since", "2026-01-01T00:00:00Z")
    rows = listed.out.splitlines()[1:]
    assert len(rows) == 2 and sum(" (safety) " in row for row in rows) == 1, listed.out  # the restore's safety backup
    assert lifeboat("get", "backups", "--since", "2999-01-01T00:00:00Z").out.count("\n") == 1  # the header only
    assert mariadb_sql(app, "SELECT a FROM t ORDER BY a") == "1\n2\n"
    assert (app.mountpoint("uploads") / "logo.png").read_bytes() == random_bytes(3, 50_000)


def test_unknown_app_and_unknown_backup_are_one_line_errors(apps_env: Lifeboat) -> None:
    lifeboat = apps_env
    missing = lifeboat("backup", "no-such-app", "--storage", "local")
    assert missing.code == 1 and missing.err.strip() == (
        "error: no app 'no-such-app': no container has the label com.docker.compose.project=no-such-app"
    )
    failed = lifeboat("get", "backups", "--status", "failed").out.splitlines()
    assert len(failed) == 2 and failed[0].split()[5] == "REASON" and failed[1].split()[5] == "APP_NOT_FOUND"
    unknown = lifeboat("restore", "nope")
    assert unknown.code == 1 and unknown.err.strip() == "error: no backup with id 'nope' in the catalog"


def test_a_backup_killed_while_the_app_is_stopped_is_repaired_by_the_next_invocation(
    apps_env: Lifeboat, app: TestApp
) -> None:
    lifeboat = apps_env
    worker = app.run("worker", BUSYBOX, IDLE)
    worker.stop(timeout=1)  # stopped by its operator: Lifeboat must leave it stopped
    for number in range(6):  # enough data that reading the volume takes a while
        (app.mountpoint("uploads") / f"big{number}.bin").write_bytes(random_bytes(10 + number, 40_000_000))

    process = subprocess.Popen(
        [LIFEBOAT, "backup", app.name, "--storage", "local", "--consistency", "stop"],
        env=lifeboat.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while app.state("web") == "running" and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the backup ended before the app was stopped"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert app.state("web") == "exited" and app.state("db") == "exited"

    listed = lifeboat("apps", app.name)
    assert listed.code == 0, listed.err
    assert f"repair: {app.name}-web-1 (left stopped by a killed Lifeboat): started" in listed.err
    assert f"repair: {app.name}-db-1 (left stopped by a killed Lifeboat): started" in listed.err
    assert app.state("web") == "running" and app.state("db") == "running"
    assert app.state("worker") == "exited"
    assert lifeboat("repair").out.strip() == "nothing to repair"
    catalog = Catalog(f"sqlite:///{lifeboat.home / 'catalog.db'}")
    (row,) = catalog.list_backups()
    assert row.status != BackupStatus.COMPLETED  # the killed backup never claims to be complete
    catalog.close()


def test_a_dry_run_names_what_would_change_and_changes_nothing(apps_env: Lifeboat, app: TestApp) -> None:
    lifeboat = apps_env
    uploads = app.mountpoint("uploads")
    (uploads / "readme.txt").write_text("original\n")
    made = lifeboat("backup", app.name, "--storage", "local", "-o", "json")
    assert made.code == 0, made.err
    backup_id = json.loads(made.out)["backup"]["backup_id"]
    unchanged = lifeboat("restore", backup_id, "--dry-run", "--database", "none")  # the files only
    assert unchanged.code == 0, unchanged.out + unchanged.err
    assert "volumes/uploads" in unchanged.out and "nothing differs" in unchanged.out

    (uploads / "readme.txt").write_text("damaged\n")
    (uploads / "extra.txt").write_text("written after the backup\n")
    mariadb_sql(app, "CREATE TABLE later (a INT)")
    files_before = tree_state(uploads)
    preview = lifeboat("restore", backup_id, "--dry-run", "-o", "json")

    assert preview.code == 1, preview.err
    plan = json.loads(preview.out)
    (uploads_plan,) = [t for t in plan["trees"] if t["path"] == "volumes/uploads"]
    assert [c.split(" ")[0] for c in uploads_plan["change"]] == ["readme.txt"]
    assert uploads_plan["delete"] == ["extra.txt"] and uploads_plan["add"] == []
    (dump,) = plan["dumps"]
    assert (dump["path"], dump["container"]) == ("databases/db.sql", f"{app.name}-db-1")
    assert dump["databases"]["wordpress"] == {}  # what the load would put back: the empty database
    assert sorted(plan["stopping"]) == [f"{app.name}-db-1", f"{app.name}-web-1"]
    text = lifeboat("restore", backup_id, "--dry-run")
    assert text.code == 1 and "1 to change (readme.txt" in text.out and "1 to delete (extra.txt)" in text.out
    assert tree_state(uploads) == files_before  # nothing changed: files, database, containers
    assert "later" in mariadb_sql(app, "SHOW TABLES")
    assert app.state("web") == "running" and app.state("db") == "running"
    catalog = Catalog(f"sqlite:///{lifeboat.home / 'catalog.db'}")
    assert catalog.restore_runs_of_backup(backup_id) == []  # a preview is no restore
    assert len(catalog.list_backups()) == 1  # and takes no safety backup
    catalog.close()
    clone = lifeboat("restore", backup_id, "--dry-run", "--target-app", "no-such-app")
    assert clone.code == 1, clone.err  # an app this host lacks would be made from the backup
    assert "app no-such-app would be put back through the Docker API" in clone.out
    assert not app.client.containers.list(all=True, filters={"label": "com.docker.compose.project=no-such-app"})
    failed = lifeboat("restore", backup_id, "--dry-run", "--volume-map", "uploads=no-such-volume")
    assert failed.code == 2 and "no-such-volume" in failed.err


def test_backup_with_storage_picks_the_apps_policy_for_that_storage(apps_env: Lifeboat, app: TestApp) -> None:
    lifeboat = apps_env
    (lifeboat.resources / "offsite.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: offsite}\n"
        f"spec:\n  local: {{path: {lifeboat.home / 'offsite'}}}\n"
        "  encryption: {passphrase: {env: APPS_TEST_PASSPHRASE}}\n"
    )
    assert lifeboat("repo", "--storage", "offsite", "init").code == 0
    for name, storage in (("nightly", "local"), ("weekly-offsite", "offsite")):
        (lifeboat.resources / f"{name}.yaml").write_text(
            f"apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: {name}}}\n"
            f"spec:\n  app: {app.name}\n  storage: {storage}\n  retention: {{keepLast: 3}}\n"
        )
    ambiguous = lifeboat("backup", app.name)
    assert ambiguous.code == 1 and "several BackupPolicies back up app" in ambiguous.err
    made = lifeboat("backup", app.name, "--storage", "offsite", "-o", "json")
    assert made.code == 0, made.err
    backup = json.loads(made.out)["backup"]
    assert (backup["storage"], backup["policy"], backup["backup_type"]) == ("offsite", "weekly-offsite", "full")


def test_version(lifeboat: Lifeboat) -> None:
    shown = lifeboat("--version")
    assert shown.code == 0 and shown.out.startswith("lifeboat, version ")
