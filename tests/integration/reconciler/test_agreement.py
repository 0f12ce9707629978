"""20 policies over 10 apps on the real engine, for 10 simulated days (across a DST change):
each due run happens once, retention keeps exactly what the rules say (computed here
independently), and the catalog, the repository and the YAML statuses agree; the
repository checks clean with every pack read."""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from docker import DockerClient

from controller.apps.docker_api import connect
from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.work_queue import WorkQueue
from controller.repository.checker import Checker
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.integration.reconciler.test_reconciler import Clock
from tests.support.docker_apps import BUSYBOX, IDLE, TestApp

PASSPHRASE = "agreement passphrase"
START = datetime(2026, 3, 20, 0, 30, tzinfo=UTC)  # Europe/Berlin moves to summer time on 29 March
END = START + timedelta(days=10)
APPS = 10
BERLIN = ZoneInfo("Europe/Berlin")


def policies(app: str) -> str:
    return f"""\
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{name: {app}-nightly}}
spec:
  app: {app}
  schedule: {{frequency: daily, time: "02:00", timezone: Europe/Berlin}}
  retention: {{keepLast: 3}}
  storage: local
---
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata: {{name: {app}-midnight}}
spec:
  app: {app}
  schedule: "0 0 * * *"
  retention: {{keepDaily: 2, keepWeekly: 2}}
  storage: local
"""


def as_time(value: object) -> datetime:
    """A status time as YAML gives it back (a datetime, naive meaning UTC, or a string)."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def newest_per(rows: list[Backup], bucket: str, count: int) -> set[str]:
    """The newest backup of each of the `count` most recent buckets (UTC days or ISO weeks)."""
    groups: dict[object, Backup] = {}
    for row in sorted(rows, key=lambda r: r.created_at):
        day = row.created_at.astimezone(UTC).date()
        groups[day if bucket == "day" else tuple(day.isocalendar())[:2]] = row
    return {groups[key].backup_id for key in sorted(groups)[-count:]}


def test_twenty_policies_ten_apps_ten_days_agree(
    tmp_path: Path, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    resources = tmp_path / "resources"
    (resources / "policies").mkdir(parents=True)
    (resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {tmp_path / 'repo'}}}\n  encryption: {{passphrase: {{env: AGREE_PASS}}}}\n"
    )
    apps = []
    for number in range(APPS):
        app = TestApp(docker_client, f"agree{number}-{secrets.token_hex(2)}")
        made_apps.append(app)
        app.run("web", BUSYBOX, IDLE, volumes={app.volume("data"): {"bind": "/data", "mode": "rw"}})
        (app.mountpoint("data") / "base.txt").write_text(f"app {number}\n" * 1000)
        (resources / "policies" / f"{app.name}.yaml").write_text(policies(app.name))
        apps.append(app)

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    clock = Clock(START)
    queue = WorkQueue(2)
    reconciler = Reconciler(resources, catalog, connect, queue, clock=clock, environ={"AGREE_PASS": PASSPHRASE})
    due_times: dict[str, list[datetime]] = defaultdict(list)
    reconciler.pass_once()
    while True:
        assert reconciler.next_due is not None
        if reconciler.next_due > END:
            break
        clock.now = reconciler.next_due
        for app in apps:  # a day of activity: something new in every app
            (app.mountpoint("data") / f"{clock.now:%Y%m%d%H%M}.txt").write_text(str(clock.now))
        for path in (resources / "policies").iterdir():
            for document in yaml.safe_load_all(path.read_text()):
                if as_time(document["status"]["nextRunAt"]) == clock.now:
                    due_times[document["metadata"]["name"]].append(clock.now)
        reconciler.pass_once()
        assert queue.wait_idle(300)
        reconciler.pass_once()
    assert queue.wait_idle(300)  # a run deferred while its app was busy may have started last
    reconciler.pass_once()
    queue.shutdown()

    repository = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE.encode())
    snapshots = {entry.id: entry.snapshot for entry in repository.snapshots()}
    kept_rows: list[Backup] = []
    for app in apps:
        for kind in ("nightly", "midnight"):
            name = f"{app.name}-{kind}"
            completed = catalog.list_backups(BackupFilter(policy=name, limit=1000))
            assert all(r.status == BackupStatus.COMPLETED for r in completed), name
            kept_rows += completed
            # Each due time ran once: 10 nights at 02:00 Berlin, 10 UTC midnights. From 29 March,
            # 02:00 in Berlin is 00:00 UTC: both policies of an app fall due at once, and one waits.
            runs = [e for e in catalog.events_for("BackupPolicy", name, limit=1000) if e.reason == "BackupCompleted"]
            assert len(runs) == len(due_times[name]) == 10, name
            if kind == "nightly":  # 02:00 in Berlin; on the 29th 02:00 does not exist and 03:00 stands in
                assert {t.astimezone(BERLIN).strftime("%H:%M") for t in due_times[name]} <= {"02:00", "03:00"}
            # Retention, computed here from the rules: all runs' times are the due times.
            taken = sorted(t.astimezone(UTC) for t in due_times[name])
            if kind == "nightly":
                assert [r.created_at.astimezone(UTC) for r in completed] == list(reversed(taken[-3:])), name
            else:
                fake = [Backup(backup_id=str(t), app_id="", app_name="", backup_type="", created_at=t) for t in taken]
                expected = newest_per(fake, "day", 2) | newest_per(fake, "week", 2)
                assert {str(r.created_at.astimezone(UTC)) for r in completed} == expected, name
            # The YAML status says what the catalog says.
            status = next(
                d["status"]
                for d in yaml.safe_load_all((resources / "policies" / f"{app.name}.yaml").read_text())
                if d["metadata"]["name"] == name
            )
            assert status["lastBackup"]["id"] == completed[0].backup_id
            assert status["counts"]["retained"] == len(completed)
            conditions = {c["type"]: c["status"] for c in status["conditions"]}
            assert conditions["Ready"] == "True" and conditions["LastBackupSucceeded"] == "True"
            assert "Stalled" not in conditions and "Reconciling" not in conditions
    # The repository holds exactly the catalog's snapshots, and every byte of them checks.
    assert {r.snapshot_id for r in kept_rows} == set(snapshots)
    assert {r.backup_id for r in kept_rows} == {s.tags["backup"] for s in snapshots.values()}
    checked = Checker(repository).check(read_data_percent=100)
    assert checked.ok, [d.describe() for d in checked.damage]
    catalog.close()
