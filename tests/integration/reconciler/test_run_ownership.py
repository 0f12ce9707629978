"""One backup run, one catalog row: a transient storage failure after the row exists is
retried inside the run, for a scheduled, an API and a CLI backup alike. The row ends
completed after the retry, or failed once when the storage stays away; never a failed
row plus a second one for the retry."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from docker import DockerClient

from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus
from controller.cli.app_commands import backup as backup_command
from controller.cli.context import CliContext
from controller.errors import DockerUnavailable
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.storage_factory import storage_for_resource
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.resources.backup_storage import BackupStorage
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from tests.e2e.conftest import LIFEBOAT
from tests.support.api_stack import ENVIRON, start_stack, write_storage
from tests.support.docker_apps import BUSYBOX, IDLE, TestApp
from tests.support.fault_injecting_storage import Fault, FaultInjectingStorage
from tests.support.repository import write_tree

PASSPHRASE = ENVIRON["API_STACK_PASS"]
START = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)
StorageFactory = Callable[[BackupStorage, Mapping[str, str]], Storage]


def failing_uploads(times: int) -> tuple[StorageFactory, Fault]:
    """Storages whose first `times` pack uploads fail as a dropped connection would. The fault
    is shared by every storage built, as one flaky network is."""
    fault = Fault("save", matches=lambda key: key.startswith("data/"), kind="transient", times=times)

    def factory(storage: BackupStorage, environ: Mapping[str, str]) -> Storage:
        return FaultInjectingStorage(storage_for_resource(storage, environ), [fault])

    return factory, fault


def no_docker() -> None:
    raise DockerUnavailable("no Docker in this test")


def small_app(client: DockerClient, made_apps: list[TestApp]) -> TestApp:
    app = TestApp(client, f"own{secrets.token_hex(3)}")
    made_apps.append(app)
    app.run("web", BUSYBOX, IDLE, volumes={app.volume("uploads"): {"bind": "/data", "mode": "rw"}})
    (app.mountpoint("uploads") / "page.html").write_text("<h1>hello</h1>\n" * 100)
    return app


def only_row(rows: list[Backup]) -> Backup:
    assert len(rows) == 1, [(r.backup_id, r.status, r.error_message) for r in rows]
    return rows[0]


@pytest.mark.parametrize(("failures", "ends"), [(1, BackupStatus.COMPLETED), (20, BackupStatus.FAILED)])
def test_a_scheduled_backup_keeps_one_row_through_transient_failures(
    tmp_path: Path, failures: int, ends: BackupStatus
) -> None:
    resources = tmp_path / "resources"
    write_storage(resources, tmp_path / "repo")
    write_tree(tmp_path / "etc", {"app.conf": b"x=1\n"})
    (resources / "policy.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: platform}\n"
        f"spec:\n  paths: [{tmp_path / 'etc'}]\n  schedule: '* * * * *'\n  retention: {{keepLast: 5}}\n"
        "  storage: local\n"
    )
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    now = [START]
    factory, fault = failing_uploads(failures)
    queue = WorkQueue(1)
    reconciler = Reconciler(
        resources,
        catalog,
        no_docker,  # type: ignore[arg-type]
        queue,
        clock=lambda: now[0],
        environ=ENVIRON,
        retry_wait=0.05,
        storage_factory=factory,
    )
    reconciler.pass_once()
    now[0] += timedelta(minutes=1)
    reconciler.pass_once()
    assert queue.wait_idle(120)
    queue.shutdown()
    row = only_row(catalog.list_backups(BackupFilter(policy="platform")))
    assert row.status == ends, row.error_message
    assert fault.fired == min(failures, 3)  # three attempts at most, each stopped by one failed upload
    retries = [e for e in catalog.events_for("BackupPolicy", "platform", limit=50) if e.reason == "Retrying"]
    assert len(retries) == min(failures, 2)
    if ends == BackupStatus.FAILED:
        assert row.error_code == "STORAGE_UNAVAILABLE" and row.snapshot_id is None
    reconciler.pass_once()  # the policy's status, where people look
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LIFEBOAT_RESOURCES": str(resources)}
    env["LIFEBOAT_CATALOG"] = f"sqlite:///{tmp_path / 'catalog.db'}"
    shown = subprocess.run([LIFEBOAT, "get", "policies"], env=env, capture_output=True, text=True, check=True)
    result = "Failed (STORAGE_UNAVAILABLE)" if ends == BackupStatus.FAILED else "Completed"
    assert f" {result} " in shown.stdout.splitlines()[1], shown.stdout
    catalog.close()


def test_an_api_backup_keeps_one_row_through_a_transient_failure(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = small_app(docker_client, made_apps)
    factory, fault = failing_uploads(1)
    stack = start_stack(tmp_path, lambda: docker_client, storage_factory=factory)
    try:
        with stack.client() as client:
            answer = client.post(f"/api/v1/backups/{app.name}?wait=true", json={})
        assert answer.status_code == 200, answer.text
        row = only_row(stack.catalog.list_backups(BackupFilter(app_id=app.name)))
        assert row.status == BackupStatus.COMPLETED and row.backup_id == answer.json()["data"]["backup_id"]
        assert fault.fired == 1
    finally:
        stack.close()


def test_a_cli_backup_keeps_one_row_through_a_transient_failure(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = small_app(docker_client, made_apps)
    resources = tmp_path / "resources"
    write_storage(resources, tmp_path / "repo")
    factory, fault = failing_uploads(1)
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    environ = {**ENVIRON, "HOME": str(tmp_path)}
    context = CliContext(None, str(resources), catalog_url, environ=environ, storage_factory=factory)
    Repository.init(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode(), START, "h", "t")
    backup_command.main([app.name, "--storage", "local", "-o", "json"], obj=context, standalone_mode=False)
    catalog = Catalog(catalog_url)
    row = only_row(catalog.list_backups(BackupFilter(app_id=app.name)))
    assert row.status == BackupStatus.COMPLETED
    items = catalog.items_of(row.backup_id)
    assert [(item.name, item.files) for item in items if item.kind == "volume"] == [("volumes/uploads", 1)]
    assert [item.name for item in items if item.kind == "definition"] == ["app/definition.json"]
    assert fault.fired == 1
    catalog.close()
