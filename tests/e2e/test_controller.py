"""The controller as a process, in real time: a one-minute schedule whose run was missed
(the controller was down) is caught up at start, its backup's status lands in the policy's
YAML, a Healthchecks-style endpoint on loopback gets the start, success and fail pings of
the scheduled runs, `get notifiers` shows the deliveries, `notify test` says whether a
destination works; SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from controller.resources.meta import spec_generation
from tests.e2e.conftest import LIFEBOAT, Lifeboat
from tests.support.compose_apps import free_port
from tests.support.receivers import http_receiver
from tests.support.repository import write_tree


def policy(name: str, path: Path) -> str:
    """A policy as a controller that was down left it: its next run due a minute ago, so the
    running controller makes that run at once (one catch-up run) instead of at the next full
    minute."""
    text = (
        f"apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: {name}}}\n"
        f'spec:\n  paths: [{path}]\n  schedule: "* * * * *"\n  retention: {{keepLast: 2}}\n  storage: local\n'
    )
    generation = spec_generation(yaml.safe_load(text)["spec"])
    due = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0).isoformat().replace("+00:00", "Z")
    return text + f"status:\n  observedGeneration: {generation}\n  nextRunAt: '{due}'\n"


def notifier_status(lifeboat: Lifeboat, name: str) -> dict:  # type: ignore[type-arg]
    for document in yaml.safe_load_all((lifeboat.resources / "notifiers.yaml").read_text()):
        if document["metadata"]["name"] == name:
            return document.get("status") or {}
    return {}


def test_scheduled_runs_back_up_and_ping_healthchecks(lifeboat: Lifeboat, tmp_path: Path) -> None:
    source = tmp_path / "etc-platform"
    write_tree(source, {"platform.conf": b"tier=demo\n"})
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{file: {tmp_path / 'pass'}}}}}\n"
    )
    (tmp_path / "pass").write_text("controller e2e passphrase\n")
    (lifeboat.resources / "policy.yaml").write_text(policy("platform", source))
    (lifeboat.resources / "broken.yaml").write_text(policy("broken", tmp_path / "never-created"))
    with http_receiver() as receiver:
        (lifeboat.resources / "notifiers.yaml").write_text(
            "apiVersion: lifeboat.io/v1alpha1\nkind: Notifier\nmetadata: {name: hc}\n"
            f"spec:\n  healthchecks: {{url: '{receiver.url}/ping/{{policy}}'}}\n---\n"
            "apiVersion: lifeboat.io/v1alpha1\nkind: Notifier\nmetadata: {name: nowhere}\n"
            f"spec:\n  webhook: {{url: 'http://127.0.0.1:{free_port()}/hook'}}\n"
        )
        process = subprocess.Popen(
            [LIFEBOAT, "controller", "--resync-seconds", "2"], env=lifeboat.env(), stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 100  # the caught-up runs, the pings (a minute later: the next runs)
            expected = {"/ping/platform/start", "/ping/platform", "/ping/broken/start", "/ping/broken/fail"}
            while time.monotonic() < deadline and process.poll() is None:
                if expected <= set(receiver.paths()) and notifier_status(lifeboat, "hc").get("delivered", 0) >= 4:
                    break
                time.sleep(0.5)
            pings = receiver.paths()
            listed = lifeboat("get", "notifiers")
            tested = lifeboat("notify", "test", "hc")
            refused = lifeboat("notify", "test", "nowhere")
            unknown = lifeboat("notify", "test", "missing")
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        test_ping = receiver.paths()[-1]
    assert process.returncode == 0, err
    # Each policy's first run pings its start, then its outcome. How the two policies'
    # pings interleave is the scheduler's business: on a slow machine the platform's next
    # run can start before the broken run has failed.
    for name, outcome in (("platform", "/ping/platform"), ("broken", "/ping/broken/fail")):
        assert [p for p in pings if p.startswith(f"/ping/{name}")][:2] == [f"/ping/{name}/start", outcome], pings
    status = (yaml.safe_load((lifeboat.resources / "policy.yaml").read_text()) or {}).get("status") or {}
    catalog = Catalog(f"sqlite:///{lifeboat.home / 'catalog.db'}")
    # The catch-up run, and on a slow machine the next minute's run too: every one completed,
    # and the status names one of them.
    platform = {row.backup_id: row for row in catalog.list_backups() if row.policy == "platform"}
    assert platform and all(row.status == BackupStatus.COMPLETED for row in platform.values())
    assert status["lastBackup"]["id"] in platform
    broken = [row.status for row in catalog.list_backups() if row.policy == "broken"]
    assert broken and all(state == BackupStatus.FAILED for state in broken)
    assert all(f"backup {backup_id} of policy platform completed" in err for backup_id in platform)
    catalog.close()

    assert listed.code == 0, listed.err
    [row] = [line for line in listed.out.splitlines() if line.startswith("hc ")]
    assert "healthchecks" in row and "backup runs" in row and "True (Ready)" in row
    assert tested.code == 0 and tested.out.startswith("sent a test message to healthchecks pings to http://127.0.0.1")
    assert test_ping == "/ping/hc/log"
    assert refused.code == 1 and refused.err.startswith("error: the test message was not delivered: POST to http://")
    assert "/hook" not in refused.err and len(refused.err.strip().splitlines()) == 1
    assert unknown.code == 2 and 'Notifier "missing" not found' in unknown.err
