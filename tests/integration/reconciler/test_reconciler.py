"""Reconcile passes with a controllable clock: schedules, one catch-up run after downtime,
retention, idempotent passes, edits, suspension and invalid resources, all seen in YAML."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus
from controller.errors import DockerUnavailable
from controller.host import Owner
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.work_queue import WorkQueue
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.support.repository import write_tree

PASSPHRASE = "reconciler test passphrase"
START = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def no_docker() -> None:
    raise DockerUnavailable("no Docker in this test")


POLICY = """\
# Platform configuration, every minute.
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata:
  name: platform
spec:
  paths: [{source}]
  schedule: "* * * * *"
  retention: {{keepLast: 2}}
  storage: local
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Reconciler, Clock, Path, Catalog]]:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{env: RECONCILER_PASS}}}}\n"
    )
    source = tmp_path / "etc-platform"
    write_tree(source, {"app.conf": b"x=1\n"})
    (resources / "policy.yaml").write_text(POLICY.format(source=source))
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    clock = Clock(START)
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, no_docker, queue, clock=clock, environ={"RECONCILER_PASS": PASSPHRASE})  # type: ignore[arg-type]
    yield reconciler, clock, resources, catalog
    queue.shutdown()
    catalog.close()


def settle(reconciler: Reconciler) -> None:
    """A pass, the work it started, and the pass that records the outcome."""
    reconciler.pass_once()
    assert reconciler.queue.wait_idle(60)
    reconciler.pass_once()


def status_of(path: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(path.read_text())["status"]


def test_every_minute_keeps_the_last_two_and_catches_up_once(
    world: tuple[Reconciler, Clock, Path, Catalog], tmp_path: Path
) -> None:
    reconciler, clock, resources, catalog = world
    settle(reconciler)
    status = status_of(resources / "policy.yaml")
    assert status["nextRunAt"] == "2026-11-24T10:01:00Z" and catalog.list_backups() == []
    storage_status = status_of(resources / "storage.yaml")
    assert storage_status["reachable"] is True and storage_status["conditions"][0]["status"] == "True"

    for minute in range(1, 6):
        clock.now = START.replace(second=5) + timedelta(minutes=minute)
        settle(reconciler)
        rows = catalog.list_backups()
        assert len(rows) == min(minute, 2) and all(r.status == BackupStatus.COMPLETED for r in rows)
    status = status_of(resources / "policy.yaml")
    assert status["nextRunAt"] == "2026-11-24T10:06:00Z"
    assert status["lastBackup"]["id"] == catalog.list_backups()[0].backup_id
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "LastBackupSucceeded": "True"}
    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    assert {e.id for e in repository.snapshots()} == {r.snapshot_id for r in catalog.list_backups()}

    # Idempotent: another pass at the same instant starts nothing and writes nothing.
    before = (resources / "policy.yaml").read_bytes()
    settle(reconciler)
    assert (resources / "policy.yaml").read_bytes() == before
    assert len(catalog.list_backups()) == 2

    # Down for 10 minutes: one catch-up run, not ten.
    first_after = {r.backup_id for r in catalog.list_backups()}
    clock.advance(minutes=10)
    settle(reconciler)
    settle(reconciler)
    new = [r for r in catalog.list_backups() if r.backup_id not in first_after]
    assert len(new) == 1
    assert "# Platform configuration, every minute." in (resources / "policy.yaml").read_text()


def test_suspend_edit_and_invalid_policies_show_in_status(world: tuple[Reconciler, Clock, Path, Catalog]) -> None:
    reconciler, clock, resources, catalog = world
    settle(reconciler)
    policy = resources / "policy.yaml"
    policy.write_text(policy.read_text().replace("  storage: local\n", "  storage: local\n  suspend: true\n"))
    clock.advance(minutes=3)
    settle(reconciler)
    assert catalog.list_backups() == []
    assert "nextRunAt" not in status_of(policy) or status_of(policy)["nextRunAt"] is None

    policy.write_text(policy.read_text().replace("  suspend: true\n", "").replace('"* * * * *"', '"*/5 * * * *"'))
    settle(reconciler)
    assert status_of(policy)["nextRunAt"] == "2026-11-24T10:05:00Z"  # the edit starts from now

    broken = resources / "broken.yaml"
    broken.write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: broken}\n"
        'spec:\n  paths: [/srv]\n  schedule: "61 * * * *"\n  retention: {keepLast: 1}\n  storage: local\n'
    )
    clock.advance(minutes=3)  # 10:06:30: the */5 run at 10:05 is due
    settle(reconciler)
    (ready,) = status_of(broken)["conditions"]
    assert ready["type"] == "Ready" and ready["status"] == "False" and ready["reason"] == "Invalid"
    assert "spec.schedule" in ready["message"] and "61" in ready["message"]
    assert len(catalog.list_backups()) == 1  # the valid policy went on
    (event,) = catalog.events_for("BackupPolicy", "broken")  # once, though every pass reports it
    assert (event.reason, event.type) == ("Invalid", "Warning") and event.message.startswith("Ready=False: spec.sch")


def test_a_policy_naming_a_missing_storage_is_not_ready(world: tuple[Reconciler, Clock, Path, Catalog]) -> None:
    reconciler, clock, resources, catalog = world
    policy = resources / "policy.yaml"
    policy.write_text(policy.read_text().replace("storage: local", "storage: elsewhere"))
    settle(reconciler)
    clock.advance(minutes=2)
    settle(reconciler)
    ready = next(c for c in status_of(policy)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StorageNotFound")
    assert catalog.list_backups() == []


def test_recovery_marks_interrupted_backups_and_restores(world: tuple[Reconciler, Clock, Path, Catalog]) -> None:
    import socket

    from controller.catalog.models import Backup, RestoreRun

    reconciler, _clock, _resources, catalog = world
    here, elsewhere = socket.gethostname(), "another-host"
    live = Owner.this_process().token  # e.g. a `lifeboat backup` running beside the controller
    dead = f"{2**22 + 17}:12345"  # a pid above the kernel's maximum: no such process
    for backup_id, host, owner, status in (
        ("mine", here, "", BackupStatus.IN_PROGRESS),  # from before owners were recorded
        ("dead", here, dead, BackupStatus.IN_PROGRESS),
        ("queued", here, dead, BackupStatus.PENDING),  # an API request whose process died
        ("running", here, live, BackupStatus.IN_PROGRESS),
        ("theirs", elsewhere, dead, BackupStatus.IN_PROGRESS),
    ):
        catalog.add_backup(
            Backup(
                backup_id=backup_id,
                app_id="wp",
                app_name="wp",
                backup_type="incremental",
                status=status,
                created_at=START,
                host=host,
                owner=owner,
            )
        )
    catalog.save_restore_run(
        RestoreRun(
            id="r1",
            restore_name="put-back",
            backup_id="mine",
            target_app="wp",
            phase="Running",
            safety_backup_id="wp-safety",
            started_at=START,
        )
    )
    notes = reconciler.recover()
    assert "backup mine marked failed (interrupted)" in notes
    assert "restore r1 marked Failed: interrupted before anything changed" in notes  # it had not started writing
    for backup_id in ("mine", "dead", "queued"):
        row = catalog.get_backup(backup_id)
        assert row.status == BackupStatus.FAILED, backup_id
        assert row.error_message == "interrupted: the process taking it stopped"
    assert catalog.get_backup("running").status == BackupStatus.IN_PROGRESS  # its process is alive
    assert catalog.get_backup("theirs").status == BackupStatus.IN_PROGRESS  # another host's work is its own
    (run,) = catalog.restore_runs("put-back")
    assert run.phase == "Failed" and "safety backup wp-safety" in run.message
    assert any("could not repair containers" in note for note in notes)  # no Docker here: said, not fatal


def test_a_full_storage_fails_the_backup_with_quota_exceeded_before_writing(
    world: tuple[Reconciler, Clock, Path, Catalog], tmp_path: Path
) -> None:
    reconciler, clock, resources, catalog = world
    storage = resources / "storage.yaml"
    storage.write_text(storage.read_text() + "  quotaBytes: 400\n")  # its config and key file alone are larger
    settle(reconciler)
    clock.advance(minutes=1)
    settle(reconciler)
    (row,) = catalog.list_backups()
    assert row.status == BackupStatus.FAILED and row.error_code == "BACKUP_QUOTA_EXCEEDED"
    assert "over its quota of 400 bytes" in (row.error_message or "")
    assert list(LocalStorage(tmp_path / "repo").list("snapshots/")) == []
    assert list(LocalStorage(tmp_path / "repo").list("data/")) == []
    last = next(c for c in status_of(resources / "policy.yaml")["conditions"] if c["type"] == "LastBackupSucceeded")
    assert (last["status"], last["reason"]) == ("False", "BACKUP_QUOTA_EXCEEDED")

    def conditions() -> dict[str, str]:
        return {c["type"]: c["status"] for c in status_of(resources / "policy.yaml")["conditions"]}

    for _ in range(2):
        clock.advance(minutes=1)
        settle(reconciler)
    assert conditions()["Stalled"] == "True"  # three failures in a row
    storage.write_text(storage.read_text().replace("quotaBytes: 400", "quotaBytes: 100000000"))
    clock.advance(minutes=1)
    settle(reconciler)
    assert conditions() == {"Ready": "True", "LastBackupSucceeded": "True"}  # Stalled is gone


def test_storage_maintenance_prunes_and_checks_on_schedule(world: tuple[Reconciler, Clock, Path, Catalog]) -> None:
    reconciler, clock, resources, catalog = world
    storage = resources / "storage.yaml"
    storage.write_text(
        storage.read_text()
        + '  maintenance:\n    prune: "*/2 * * * *"\n    check: "*/2 * * * *"\n    checkReadDataPercent: 100\n'
    )
    settle(reconciler)
    assert "lastPrune" not in status_of(storage) and "lastCheck" not in status_of(storage)
    for _ in range(3):  # prune and check share the storage's slot: one per pass
        clock.advance(minutes=1)
        settle(reconciler)
    status = status_of(storage)
    assert status["lastPrune"] and status["lastCheck"]["ok"] is True
    assert "no damage" in status["lastCheck"]["message"]
    reasons = [e.reason for e in catalog.events_for("BackupStorage", "local")]
    assert "Pruned" in reasons and "Checked" in reasons


def test_a_busy_app_defers_its_scheduled_backup_until_it_is_free(
    world: tuple[Reconciler, Clock, Path, Catalog],
) -> None:
    import threading

    reconciler, clock, resources, catalog = world
    settle(reconciler)
    release = threading.Event()
    assert reconciler.queue.submit("policy:platform", release.wait)  # say, a restore of this app
    clock.advance(minutes=1)
    reconciler.pass_once()
    assert catalog.list_backups() == []
    assert status_of(resources / "policy.yaml")["nextRunAt"] == "2026-11-24T10:01:00Z"  # still due
    release.set()
    assert reconciler.queue.wait_idle(10)
    settle(reconciler)
    assert len(catalog.list_backups()) == 1


def test_transient_failures_are_retried_then_recorded_as_a_failed_run(
    world: tuple[Reconciler, Clock, Path, Catalog],
) -> None:
    reconciler, clock, resources, catalog = world
    reconciler.retry_wait = 0.01
    policy = resources / "policy.yaml"
    policy.write_text(policy.read_text().replace("  paths:", "  app: ghost\n  paths:"))
    settle(reconciler)
    clock.advance(minutes=1)
    settle(reconciler)
    (row,) = catalog.list_backups()
    assert row.status == BackupStatus.FAILED and row.error_code == "DOCKER_UNAVAILABLE"
    events = catalog.events_for("BackupPolicy", "platform")
    assert [e.reason for e in events].count("Retrying") == 2  # three attempts in all
    last = next(c for c in status_of(policy)["conditions"] if c["type"] == "LastBackupSucceeded")
    assert (last["status"], last["reason"]) == ("False", "DOCKER_UNAVAILABLE")
    assert status_of(policy)["lastError"] == "no Docker in this test"
    # Each status change is an event, once: Ready (Scheduled) at first, the run, its failure.
    changes = [(e.reason, e.message.split(":")[0], e.type) for e in catalog.events_for("BackupPolicy", "platform")]
    assert ("Scheduled", "Ready=True", "Normal") in changes
    assert ("BackupRunning", "Reconciling=True", "Normal") in changes
    assert changes.count(("DOCKER_UNAVAILABLE", "LastBackupSucceeded=False", "Warning")) == 1
    before = len(catalog.events_for("BackupPolicy", "platform", limit=100))
    settle(reconciler)  # nothing changed: no new event
    assert len(catalog.events_for("BackupPolicy", "platform", limit=100)) == before


@pytest.mark.parametrize("deletion_policy", ["Retain", "Delete"])
def test_removing_a_policy_file_stops_it_and_keeps_or_forgets_its_backups(
    world: tuple[Reconciler, Clock, Path, Catalog], tmp_path: Path, deletion_policy: str
) -> None:
    reconciler, clock, resources, catalog = world
    policy = resources / "policy.yaml"
    policy.write_text(policy.read_text() + f"  deletionPolicy: {deletion_policy}\n")
    settle(reconciler)
    for _ in range(2):
        clock.advance(minutes=1)
        settle(reconciler)
    assert len(catalog.list_backups()) == 2
    policy.unlink()
    settle(reconciler)
    clock.advance(minutes=5)
    settle(reconciler)
    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    reasons = [e.reason for e in catalog.events_for("BackupPolicy", "platform")]
    if deletion_policy == "Retain":
        assert len(catalog.list_backups()) == 2 and len(repository.snapshots()) == 2  # and no new run
        assert "Removed" in reasons
    else:
        assert catalog.list_backups() == [] and repository.snapshots() == []
        assert "Deleted" in reasons


def test_a_policy_removed_while_the_controller_was_down_still_gets_its_deletion_policy(
    world: tuple[Reconciler, Clock, Path, Catalog], tmp_path: Path
) -> None:
    reconciler, clock, resources, catalog = world
    policy = resources / "policy.yaml"
    policy.write_text(policy.read_text() + "  deletionPolicy: Delete\n")
    for _ in range(2):
        settle(reconciler)
        clock.advance(minutes=1)
    settle(reconciler)
    assert len(catalog.list_backups()) == 2
    reconciler.queue.shutdown()  # the controller stops; meanwhile the file is removed

    broken = resources / "broken.yaml"
    broken.write_text("kind: [\n")  # and another file cannot be parsed: removals wait
    policy.unlink()
    queue = WorkQueue(2)
    restarted = Reconciler(resources, catalog, no_docker, queue, clock=clock, environ={"RECONCILER_PASS": PASSPHRASE})  # type: ignore[arg-type]
    settle(restarted)
    assert len(catalog.list_backups()) == 2 and [p.name for p in catalog.known_policies()] == ["platform"]

    broken.unlink()
    settle(restarted)
    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    assert catalog.list_backups() == [] and repository.snapshots() == []
    assert "Deleted" in [e.reason for e in catalog.events_for("BackupPolicy", "platform")]
    assert catalog.known_policies() == []  # acted on once
    queue.shutdown()


def test_the_controller_takes_its_limits_from_the_configuration(tmp_path: Path) -> None:
    """`lifeboat controller` builds its reconciler from config.yaml's limits (the Helm chart sets them there)."""
    import threading

    from controller.cli.context import CliContext
    from controller.cli.serve_commands import _reconciler

    config = tmp_path / "config.yaml"
    config.write_text("limits: {max_concurrent_backups: 3, transfers: 7, max_backup_size_gb: 1}\n")
    ctx = CliContext(str(config), str(tmp_path / "resources"), f"sqlite:///{tmp_path / 'catalog.db'}", environ={})
    reconciler = _reconciler(ctx, threading.Event(), scheduling=True)
    assert reconciler.runtime.transfers == 7
    assert reconciler.runtime.max_backup_bytes == 1024**3
    assert reconciler.queue._pool._max_workers == 3


def test_a_rolling_read_data_cycle_reads_on_from_where_the_last_check_stopped(
    world: tuple[Reconciler, Clock, Path, Catalog],
) -> None:
    reconciler, clock, resources, catalog = world
    storage = resources / "storage.yaml"
    storage.write_text(storage.read_text() + '  maintenance:\n    check: "0 */8 * * *"\n    readDataCycleDays: 1\n')
    settle(reconciler)  # 10:00:30; the first check is at 16:00
    completed = []
    for when in ("16:00:30", "00:00:30", "08:00:30"):
        hour, minute, second = (int(part) for part in when.split(":"))
        moment = clock.now.replace(hour=hour, minute=minute, second=second)
        clock.now = moment if moment > clock.now else moment + timedelta(days=1)
        settle(reconciler)
        completed.append(status_of(storage).get("readDataCycleCompletedAt"))
    first, wrapped, partial = completed
    assert first.startswith("2026-11-24T16:00:30")  # the first check reads every pack
    assert wrapped.startswith("2026-11-25T00:00:30")  # 16:00 → 00:00 passed the cycle's end
    assert partial == wrapped  # 00:00 → 08:00: a third of the cycle, not a whole one
    messages = [e.message for e in catalog.events_for("BackupStorage", "local") if e.reason == "Checked"]
    assert len(messages) == 3 and "read-data cycle completed" not in messages[-1]
