"""Backups never hide a loss: a volume emptied since the last backup, or halved, gives a
backup that completes with a warning, and the warning is where people look: the row, an
event, the policy's status, `lifeboat get backups` and `describe`, the API and the metrics."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import yaml
from docker import DockerClient

from controller.catalog.models import BackupStatus
from controller.reconciler.backup_run import BackupRequest, BackupRunner
from controller.resources.backup_policy import BackupPolicy
from tests.e2e.conftest import LIFEBOAT
from tests.support.api_stack import ApiStack, start_stack
from tests.support.docker_apps import BUSYBOX, IDLE, TestApp
from tests.support.repository import write_tree


def back_up(stack: ApiStack) -> tuple[str, list[str]]:
    """The policy's backup, by the run its schedule uses; (id, warnings)."""
    item = stack.reconciler.load().get("BackupPolicy", "platform")
    assert item is not None and isinstance(item.resource, BackupPolicy)
    row = BackupRunner(stack.reconciler.runtime).run(BackupRequest.from_policy(item.resource))
    assert row.status == BackupStatus.COMPLETED
    return row.backup_id, row.warnings.split("; ") if row.warnings else []


def policy_status(stack: ApiStack, reason: str) -> dict:  # type: ignore[type-arg]
    """The policy's status once a pass has written `reason` into LastBackupSucceeded."""
    deadline = time.monotonic() + 30
    while True:
        stack.wake.set()
        status = (yaml.safe_load((stack.resources / "policy.yaml").read_text()) or {}).get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        if conditions.get("LastBackupSucceeded", {}).get("reason") == reason:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_an_emptied_or_halved_volume_completes_with_a_warning_everywhere(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = TestApp(docker_client, f"warn{secrets.token_hex(3)}")
    made_apps.append(app)
    app.run("web", BUSYBOX, IDLE, volumes={app.volume("files"): {"bind": "/srv/files", "mode": "rw"}})
    source = app.mountpoint("files")
    write_tree(source, {"a.txt": b"a" * 1000, "b.txt": b"b" * 1000})
    stack = start_stack(tmp_path, lambda: docker_client)
    (stack.resources / "policy.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: platform}\n"
        f"spec:\n  app: {app.name}\n  retention: {{keepLast: 10}}\n  storage: local\n"
    )
    try:
        first, warnings = back_up(stack)
        assert warnings == []
        for path in source.iterdir():
            path.unlink()
        emptied, warnings = back_up(stack)
        item = "volumes/files"
        assert warnings == [f"SourceEmpty: {item} holds no files (it held 2 at backup {first})"]

        status = policy_status(stack, "SourceEmpty")
        ready = {c["type"]: c for c in status["conditions"]}["LastBackupSucceeded"]
        assert ready["status"] == "True" and item in ready["message"]
        assert status["lastBackup"]["id"] == emptied and status["lastBackup"]["warnings"] == warnings
        events = stack.catalog.events_for("BackupPolicy", "platform", limit=50)
        assert [(e.type, e.message) for e in events if e.reason == "SourceEmpty" and e.type == "Warning"] == [
            ("Warning", f"backup {emptied}: {item} holds no files (it held 2 at backup {first})")
        ]

        (source / "big.bin").write_bytes(b"x" * 100_000)
        _, warnings = back_up(stack)
        assert warnings == []  # growing from nothing is no loss
        (source / "big.bin").write_bytes(b"x" * 1_000)
        halved, warnings = back_up(stack)
        assert len(warnings) == 1 and warnings[0].startswith(f"SourceShrank: {item} holds 1000 bytes")
        policy_status(stack, "SourceShrank")

        with stack.client() as client:
            listed = client.get("/api/v1/backups", params={"policy": "platform"}).json()["data"]["items"]
            metrics = client.get("/metrics").text
        by_id = {b["backup_id"]: b["warnings"] for b in listed}
        assert by_id[first] == [] and by_id[emptied][0].startswith("SourceEmpty: ") and by_id[halved] == warnings
        assert f'backup_warning_total{{app="{app.name}",policy="platform"}} 2.0' in metrics

        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LIFEBOAT_RESOURCES": str(stack.resources)}
        env["LIFEBOAT_CATALOG"] = f"sqlite:///{tmp_path / 'catalog.db'}"
        shown = subprocess.run([LIFEBOAT, "get", "backups"], env=env, capture_output=True, text=True, check=True)
        lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
        assert lines[emptied].rstrip().endswith("SourceEmpty") and lines[halved].rstrip().endswith("SourceShrank")
        assert lines[first].rstrip().endswith("-")
        described = subprocess.run(
            [LIFEBOAT, "describe", "policy", "platform"], env=env, capture_output=True, text=True, check=True
        )
        assert "SourceEmpty" in described.stdout and "SourceShrank" in described.stdout
        policies = subprocess.run([LIFEBOAT, "get", "policies"], env=env, capture_output=True, text=True, check=True)
        header, line = policies.stdout.splitlines()[:2]
        assert "LAST RESULT" in header and "LAST BACKUP (UTC)" in header and " SourceShrank " in line
        one = subprocess.run(
            [LIFEBOAT, "describe", "backup", emptied, "-o", "json"], env=env, capture_output=True, text=True, check=True
        )
        document = yaml.safe_load(one.stdout)
        assert document["warnings"] == [f"SourceEmpty: {item} holds no files (it held 2 at backup {first})"]
        assert [(i["name"], i["files"]) for i in document["items"] if i["kind"] == "volume"] == [(item, 0)]
        reasons = {(e["type"], e["reason"]) for e in document["events"]}
        assert {("Warning", "SourceEmpty"), ("Normal", "BackupCompleted")} <= reasons
    finally:
        stack.close()
