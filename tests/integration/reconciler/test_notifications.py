"""Notifications from the controller's passes, on a controllable clock, to real receivers
on loopback: a full disk told once and its recovery once, BackupOverdue when the runs stop
happening, a receiver that is down (bounded retries, an event, backups go on), the rate
limit, and no secret in any payload."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus, Notice
from controller.reconciler.backup_run import BackupRequest, BackupRunner, policy_key
from controller.reconciler.courier import ATTEMPTS
from controller.reconciler.notifications import message_for
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.storage_factory import storage_for_resource
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.resources.backup_policy import BackupPolicy
from controller.resources.backup_storage import BackupStorage
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from tests.integration.reconciler.test_reconciler import Clock, no_docker
from tests.support.fault_injecting_storage import Fault, FaultInjectingStorage
from tests.support.receivers import HttpReceiver, http_receiver
from tests.support.repository import random_bytes, write_tree

PASSPHRASE = "notifications passphrase 7f3a"
HOOK_SECRET = "hook-signing-secret-91c2"
START = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)


@dataclass
class World:
    reconciler: Reconciler
    clock: Clock
    resources: Path
    catalog: Catalog
    source: Path

    def settle(self) -> None:
        """A pass, the work it started, the pass that records it, and every message sent."""
        self.reconciler.pass_once()
        assert self.reconciler.queue.wait_idle(60)
        self.reconciler.pass_once()
        assert self.reconciler.notifications.drain(30)

    def status(self, file: str) -> dict:  # type: ignore[type-arg]
        return yaml.safe_load((self.resources / file).read_text())["status"]

    def policy(self) -> BackupPolicy:
        return BackupPolicy.model_validate(yaml.safe_load((self.resources / "policy.yaml").read_text()))


def notifier(name: str, url: str, extra: str = "") -> str:
    return (
        f"apiVersion: lifeboat.io/v1alpha1\nkind: Notifier\nmetadata: {{name: {name}}}\n"
        f"spec:\n  webhook: {{url: '{url}', hmacSecret: {{env: HOOK_SECRET}}}}\n{extra}"
    )


@contextlib.contextmanager
def world(
    tmp_path: Path,
    repo: Path,
    policy_spec: str,
    notifiers: str,
    storage_spec: str = "",
    faults: list[Fault] | None = None,
) -> Iterator[World]:
    """`faults`: injected into every storage the controller opens (the list may change)."""
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: tiny}\n"
        f"spec:\n  local: {{path: {repo}}}\n  encryption: {{passphrase: {{env: NOTIFY_PASS}}}}\n{storage_spec}"
    )
    source = tmp_path / "srv-files"
    write_tree(source, {"site.conf": b"theme=dark\n", "upload.bin": random_bytes(5, 200_000)})
    (resources / "policy.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: files, labels: {team: web}}\n"
        f"spec:\n  paths: [{source}]\n  storage: tiny\n  retention: {{keepLast: 5}}\n{policy_spec}"
    )
    (resources / "notifiers.yaml").write_text(notifiers)
    Repository.init(LocalStorage(repo), PASSPHRASE.encode(), START, "h", "t")
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    clock = Clock(START)
    queue = WorkQueue(2)
    environ = {"NOTIFY_PASS": PASSPHRASE, "HOOK_SECRET": HOOK_SECRET}

    def storages(resource: BackupStorage, environ: Mapping[str, str]) -> Storage:
        return FaultInjectingStorage(storage_for_resource(resource, environ), faults)

    reconciler = Reconciler(
        resources,
        catalog,
        no_docker,  # type: ignore[arg-type]
        queue,
        clock=clock,
        environ=environ,
        retry_wait=0.01,
        storage_factory=storages,
    )
    try:
        yield World(reconciler, clock, resources, catalog, source)
    finally:
        reconciler.notifications.stop()
        queue.shutdown()
        catalog.close()


def fill(disk: Path) -> Path:
    """Write until the disk is full; the file that filled it."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def payloads(receiver: HttpReceiver) -> list[dict]:  # type: ignore[type-arg]
    for request in receiver.requests:  # every one signed, and none holds a secret
        expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Lifeboat-Signature-256"] == expected
        assert PASSPHRASE.encode() not in request.body and HOOK_SECRET.encode() not in request.body
    return [r.json() for r in receiver.requests]


def test_a_full_disk_is_told_once_and_its_recovery_once(tmp_path: Path, tiny_disk: Path) -> None:
    with http_receiver() as receiver:
        spec = '  schedule: "*/10 * * * *"\n  rpo: 2h\n'
        with world(tmp_path, tiny_disk / "repo", spec, notifier("ops", receiver.url)) as w:
            w.settle()  # 10:00:30: the first run is planned for 10:10
            filler = fill(tiny_disk)
            for _ in (10, 20):  # two scheduled runs fail on the full disk
                w.clock.advance(minutes=10)
                w.settle()
            failed = w.catalog.list_backups()
            assert [r.status for r in failed] == [BackupStatus.FAILED] * 2 and failed[0].error_code == "STORAGE_FULL"
            assert len(receiver.requests) == 1  # failing, then still failing: one message

            filler.unlink()  # the disk is freed
            w.clock.advance(minutes=10)
            w.settle()
            assert w.catalog.list_backups()[0].status == BackupStatus.COMPLETED
            sent = payloads(receiver)
            w.reconciler.pass_once()  # the Notifier's status: what its courier did since the last pass
            notifier_status = w.status("notifiers.yaml")
            policy_status = w.status("policy.yaml")

    assert [(p["event"], p["state"]) for p in sent] == [("BackupFailed", "firing"), ("BackupFailed", "resolved")]
    first, resolved = sent
    assert first["policy"] == "files" and first["subject"] == {"kind": "BackupPolicy", "name": "files"}
    assert first["storage"] == "tiny" and first["backup"] == failed[1].backup_id
    assert first["message"].startswith(f"backup {failed[1].backup_id}: no space left in {tiny_disk / 'repo'}")
    assert first["path"] == f"/api/v1/backups/{failed[1].backup_id}"
    assert resolved["message"].startswith(f"backup {policy_status['lastBackup']['id']} completed (after BackupFailed")
    assert notifier_status["delivered"] == 2 and notifier_status["lastDelivery"]["event"] == "BackupFailed (resolved)"
    assert {c["type"]: c["status"] for c in notifier_status["conditions"]} == {"Ready": "True"}


def test_backup_overdue_is_raised_once_when_the_runs_stop_and_resolved_by_the_next_success(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        events = "  events: [BackupOverdue]\n"
        with world(
            tmp_path, tmp_path / "repo", '  schedule: "0 * * * *"\n', notifier("ops", receiver.url, events)
        ) as w:
            w.clock.now = START.replace(hour=9, minute=59)
            w.settle()
            w.clock.advance(minutes=1)  # 10:00:30: the hourly run
            w.settle()
            assert [r.status for r in w.catalog.list_backups()] == [BackupStatus.COMPLETED]
            release = threading.Event()
            assert w.reconciler.queue.submit(policy_key("files"), lambda: release.wait(60))  # the runs stop happening

            w.clock.advance(hours=1)  # 11:00:30: due, but the work key is held
            w.reconciler.pass_once()
            assert w.reconciler.notifications.drain(30) and receiver.requests == []  # late, not yet overdue
            for minute in (31, 45):  # 11:31 overdue (11:00 plus half the hour), 11:45 still overdue
                w.clock.now = START.replace(hour=11, minute=minute)
                w.reconciler.pass_once()
                assert w.reconciler.notifications.drain(30)
            assert len(receiver.requests) == 1 and len(w.catalog.list_backups()) == 1

            release.set()
            assert w.reconciler.queue.wait_idle(60)
            w.settle()  # the held run goes now, and succeeds
            sent = payloads(receiver)
    assert [(p["event"], p["state"]) for p in sent] == [("BackupOverdue", "firing"), ("BackupOverdue", "resolved")]
    assert sent[0]["message"] == (
        "policy files has no successful backup since 2026-11-24 10:00 UTC; one was due by 2026-11-24 11:30 UTC"
    )
    assert sent[0]["path"] == "/api/v1/backups?policy=files" and sent[0]["time"] == "2026-11-24T11:31:30Z"


def test_a_receiver_that_is_down_gets_bounded_retries_and_an_event_and_backups_go_on(tmp_path: Path) -> None:
    with http_receiver() as down, http_receiver() as up:
        down.status = 503
        events = "  events: [BackupSucceeded]\n"
        both = notifier("down", down.url, events) + "---\n" + notifier("up", up.url, events)
        with world(tmp_path, tmp_path / "repo", "", both) as w:
            w.reconciler.pass_once()
            runner = BackupRunner(w.reconciler.runtime)
            rows = [runner.run(BackupRequest.from_policy(w.policy())) for _ in range(2)]
            assert w.reconciler.notifications.drain(30)
            w.reconciler.pass_once()
            documents = yaml.safe_load_all((w.resources / "notifiers.yaml").read_text())
            statuses = {d["metadata"]["name"]: d["status"] for d in documents}
            events = w.catalog.events_for("Notifier", "down")
    assert [r.status for r in rows] == [BackupStatus.COMPLETED] * 2
    assert len(down.requests) == 2 * ATTEMPTS and len(up.requests) == 2
    ready = statuses["down"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "DeliveryFailed")
    assert statuses["down"]["lastError"] == f"POST to {down.url} answered HTTP 503 Service Unavailable"
    assert statuses["down"]["failed"] == 2 and statuses["down"].get("delivered", 0) == 0
    assert statuses["up"]["delivered"] == 2 and statuses["up"]["conditions"][0]["status"] == "True"
    failures = [e for e in events if e.reason == "DeliveryFailed" and "given up" in e.message]
    assert len(failures) == 2 and failures[0].type == "Warning"
    assert f"BackupSucceeded about BackupPolicy/files given up after {ATTEMPTS} attempts" in failures[0].message


def test_a_restarted_controller_sends_what_was_announced_while_it_was_down(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        events = "  events: [BackupSucceeded]\n"
        with world(tmp_path, tmp_path / "repo", "", notifier("ops", receiver.url, events)) as w:
            w.reconciler.pass_once()
            runner = BackupRunner(w.reconciler.runtime)
            first = runner.run(BackupRequest.from_policy(w.policy()))
            assert w.reconciler.notifications.drain(30)
            w.reconciler.notifications.stop()  # the controller stops; a CLI backup runs meanwhile
            second = runner.run(BackupRequest.from_policy(w.policy()))
            environ = {"NOTIFY_PASS": PASSPHRASE, "HOOK_SECRET": HOOK_SECRET}
            queue = WorkQueue(1)
            restarted = Reconciler(w.resources, w.catalog, no_docker, queue, clock=w.clock, environ=environ)  # type: ignore[arg-type]
            restarted.notifications.start()
            time.sleep(1.5)  # its poller runs before the first pass: it must not take the notice yet
            restarted.pass_once()
            assert restarted.notifications.drain(30)
            restarted.notifications.stop()
            queue.shutdown()
    assert [r.json()["backup"] for r in receiver.requests] == [first.backup_id, second.backup_id]


def test_the_rate_limit_leaves_out_what_is_over_it_and_says_so(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        extra = "  events: [BackupSucceeded]\n  rateLimit: {messages: 2, perMinutes: 60}\n"
        with world(tmp_path, tmp_path / "repo", "", notifier("ops", receiver.url, extra)) as w:
            w.reconciler.pass_once()
            for _ in range(4):
                BackupRunner(w.reconciler.runtime).run(BackupRequest.from_policy(w.policy()))
                assert w.reconciler.notifications.drain(30)
            w.reconciler.pass_once()
            status = w.status("notifiers.yaml")
    assert len(receiver.requests) == 2 and (status["delivered"], status["suppressed"]) == (2, 2)


def test_secrets_the_resources_name_are_taken_out_of_what_is_sent(tmp_path: Path) -> None:
    with http_receiver() as receiver, world(tmp_path, tmp_path / "repo", "", notifier("ops", receiver.url)) as w:
        w.reconciler.pass_once()
        secrets = w.reconciler.notifications._secrets
        notice = Notice(
            id=1,
            time=START,
            host="h",
            event="BackupFailed",
            state="firing",
            kind="BackupPolicy",
            name="files",
            policy="files",
            message=f"dump failed: postgresql://app:dbpass99@db/app said {PASSPHRASE} and {HOOK_SECRET}",
        )
        text = message_for(notice, secrets).text
    assert text == "dump failed: postgresql://app:***@db/app said *** and ***"


def test_a_storage_check_that_finds_damage_and_a_storage_out_of_reach_are_each_told_once_and_resolved_once(
    tmp_path: Path,
) -> None:
    faults: list[Fault] = []
    check = "  maintenance: {check: '*/10 * * * *', checkReadDataPercent: 100}\n"
    with (
        http_receiver() as receiver,
        world(tmp_path, tmp_path / "repo", "", notifier("ops", receiver.url), check, faults) as w,
    ):
        w.reconciler.pass_once()
        BackupRunner(w.reconciler.runtime).run(BackupRequest.from_policy(w.policy()))
        faults.append(Fault("load", lambda key: key.startswith("data/"), kind="flip", times=10**9))
        for _ in range(2):  # two checks find the damage
            w.clock.advance(minutes=10)
            w.settle()
        faults.clear()
        w.clock.advance(minutes=10)
        w.settle()  # a clean check
        faults.append(Fault("load", lambda key: key == "config", kind="transient", times=10**9))
        for _ in range(3):
            w.settle()
        faults.clear()
        w.settle()
        sent = payloads(receiver)
    assert [(p["event"], p["state"], p["subject"]["name"]) for p in sent] == [
        ("CheckFailed", "firing", "tiny"),
        ("CheckFailed", "resolved", "tiny"),
        ("StorageUnreachable", "firing", "tiny"),
        ("StorageUnreachable", "resolved", "tiny"),
    ]
    assert "failed authentication" in sent[0]["message"] and sent[0]["path"] is None
    assert sent[2]["message"].startswith("storage tiny: injected: loading config failed (transient)")
    assert sent[3]["message"].startswith("storage tiny is reachable again")


@pytest.mark.parametrize("labels", [{"team": "web"}, {"team": "db"}])
def test_a_selector_by_label_picks_the_policies_that_carry_it(tmp_path: Path, labels: dict[str, str]) -> None:
    with http_receiver() as receiver:
        extra = f"  events: [BackupSucceeded]\n  selector: {{labels: {labels}}}\n"
        with world(tmp_path, tmp_path / "repo", "", notifier("ops", receiver.url, extra)) as w:
            w.reconciler.pass_once()
            BackupRunner(w.reconciler.runtime).run(BackupRequest.from_policy(w.policy()))
            assert w.reconciler.notifications.drain(30)
    assert len(receiver.requests) == (1 if labels["team"] == "web" else 0)
