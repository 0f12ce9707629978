"""A scheduled drill: the controller (its reconcile passes, with a controllable clock) runs
the policy's drill when spec.verify.schedule says so, and the outcome reaches the YAML
status: lastDrill, the Verified condition, nextDrillAt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from docker import DockerClient

from controller.apps.docker_api import connect
from controller.catalog.catalog import Catalog
from controller.reconciler.backup_run import BackupRequest, BackupRunner
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.resources.backup_policy import BackupPolicy
from controller.storage.local import LocalStorage
from tests.integration.reconciler.test_reconciler import Clock
from tests.support.compose_apps import ComposeApp, blog_project, free_port
from tests.support.docker_apps import BUSYBOX

PASSPHRASE = "scheduled drill passphrase"
START = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)


@pytest.fixture
def blog(tmp_path: Path, docker_client: DockerClient) -> Iterator[ComposeApp]:
    app = blog_project(docker_client, tmp_path / "blog", BUSYBOX, free_port())
    app.sql("CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1);")
    yield app
    app.remove()


def test_a_drill_runs_on_its_schedule_and_its_result_reaches_the_yaml_status(tmp_path: Path, blog: ComposeApp) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{env: DRILL_PASS}}}}\n"
    )
    policy_file = resources / "policy.yaml"
    policy_file.write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: blog}\n"
        f"spec:\n  app: {blog.name}\n  storage: local\n  retention: {{keepLast: 5}}\n"
        '  verify:\n    schedule: "*/5 * * * *"\n    checks:\n'
        '      - sql: {service: db, database: wordpress, query: "SELECT COUNT(*) FROM posts", expect: "1"}\n'
    )
    Repository.init(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode(), START, "h", "t")
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    clock = Clock(START)
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, connect, queue, clock=clock, environ={"DRILL_PASS": PASSPHRASE})
    try:
        policy = BackupPolicy.model_validate(yaml.safe_load(policy_file.read_text()))
        reconciler.load()  # the storages, as the repositories open them
        BackupRunner(reconciler.runtime).run(BackupRequest.from_policy(policy))

        reconciler.pass_once()  # 10:00:30: the next drill is at 10:05, none runs yet
        assert queue.wait_idle(60)
        status = yaml.safe_load(policy_file.read_text())["status"]
        assert status["nextDrillAt"].startswith("2026-11-24T10:05:00") and "lastDrill" not in status
        assert catalog.drills() == []

        clock.advance(minutes=5)  # 10:05:30: due
        reconciler.pass_once()
        assert queue.wait_idle(300)
        reconciler.pass_once()
        status = yaml.safe_load(policy_file.read_text())["status"]
        verified = next(c for c in status["conditions"] if c["type"] == "Verified")
        assert (verified["status"], verified["reason"]) == ("True", "DrillPassed")
        assert status["lastDrill"]["result"] == "Passed" and status["lastDrill"]["durationSeconds"] > 0
        assert status["nextDrillAt"].startswith("2026-11-24T10:10:00")
        assert [d.result for d in catalog.drills()] == ["Passed"]
    finally:
        queue.shutdown()
        catalog.close()
