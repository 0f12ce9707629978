"""The catalog on SQLite and on a real PostgreSQL server: the same behaviour on both."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupItem, BackupStatus, ItemKind, Notice, QuiescedContainer, RestoreRun
from controller.catalog.schema import SCHEMA_VERSION
from controller.errors import BackupNotFound, CatalogError

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'catalog.db'}"
    server: str = request.getfixturevalue("postgres_url")
    database = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {database}"))
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    opened = Catalog(catalog_url)
    yield opened
    opened.close()


def a_backup(backup_id: str, app: str = "wordpress001", minutes: int = 0, **fields: object) -> Backup:
    return Backup(
        backup_id=backup_id,
        app_id=app,
        app_name=app,
        backup_type="incremental",
        created_at=T0 + timedelta(minutes=minutes),
        **fields,
    )


def test_new_catalog_is_created_at_the_current_schema_version(catalog: Catalog, catalog_url: str) -> None:
    assert catalog.previous_version == 0
    again = Catalog(catalog_url)
    assert again.previous_version == SCHEMA_VERSION
    again.close()


def test_backup_round_trip_with_items_and_aware_times(catalog: Catalog) -> None:
    items = [
        BackupItem(backup_id="", kind=ItemKind.VOLUME, name="uploads", bytes=1234, files=3),
        BackupItem(backup_id="", kind=ItemKind.DUMP, name="db/mariadb", bytes=99, exit_code=0),
    ]
    catalog.add_backup(
        a_backup(
            "bk-1", policy="wp", size_bytes=1333, status=BackupStatus.COMPLETED, completed_at=T0 + timedelta(seconds=42)
        ),
        items,
    )
    stored = catalog.get_backup("bk-1")
    assert (stored.status, stored.size_bytes, stored.policy) == (BackupStatus.COMPLETED, 1333, "wp")
    assert stored.created_at == T0 and stored.created_at.tzinfo is not None
    assert stored.completed_at == T0 + timedelta(seconds=42)
    assert [(i.kind, i.name, i.bytes) for i in catalog.items_of("bk-1")] == [
        (ItemKind.VOLUME, "uploads", 1234),
        (ItemKind.DUMP, "db/mariadb", 99),
    ]


def test_unknown_backup_is_backup_not_found(catalog: Catalog) -> None:
    with pytest.raises(BackupNotFound, match="'bk-missing'"):
        catalog.get_backup("bk-missing")


def test_save_backup_updates_status(catalog: Catalog) -> None:
    backup = catalog.add_backup(a_backup("bk-2", status=BackupStatus.IN_PROGRESS))
    backup.status, backup.error_message = BackupStatus.FAILED, "dump exited 2"
    catalog.save_backup(backup)
    assert catalog.get_backup("bk-2").error_message == "dump exited 2"


def test_list_filters_and_orders_newest_first(catalog: Catalog) -> None:
    for index in range(6):
        catalog.add_backup(
            a_backup(
                f"bk-{index}",
                app="wp" if index % 2 else "gitea",
                minutes=index,
                status=BackupStatus.COMPLETED if index < 4 else BackupStatus.FAILED,
            )
        )
    assert [b.backup_id for b in catalog.list_backups()] == [f"bk-{i}" for i in range(5, -1, -1)]
    assert [b.backup_id for b in catalog.list_backups(BackupFilter(app_id="wp"))] == ["bk-5", "bk-3", "bk-1"]
    failed = catalog.list_backups(BackupFilter(status=BackupStatus.FAILED))
    assert [b.backup_id for b in failed] == ["bk-5", "bk-4"]
    window = BackupFilter(created_after=T0 + timedelta(minutes=1), created_before=T0 + timedelta(minutes=3))
    assert [b.backup_id for b in catalog.list_backups(window)] == ["bk-3", "bk-2", "bk-1"]
    page = catalog.list_backups(BackupFilter(limit=2, offset=2))
    assert [b.backup_id for b in page] == ["bk-3", "bk-2"]


def test_events_keep_the_most_recent_in_order(catalog: Catalog) -> None:
    for minute in range(30):
        catalog.record_event(T0 + timedelta(minutes=minute), "BackupPolicy", "wp", "BackupSucceeded", f"#{minute}")
    catalog.record_event(T0, "BackupPolicy", "other", "BackupFailed", "x", warning=True)
    events = catalog.events_for("BackupPolicy", "wp", limit=5)
    assert [e.message for e in events] == ["#25", "#26", "#27", "#28", "#29"]
    assert catalog.events_for("BackupPolicy", "other")[0].type == "Warning"


def test_restore_runs(catalog: Catalog) -> None:
    catalog.save_restore_run(
        RestoreRun(
            id="r-1", restore_name="wp-restore", backup_id="bk-1", target_app="wp", phase="Running", started_at=T0
        )
    )
    catalog.save_restore_run(
        RestoreRun(
            id="r-1",
            restore_name="wp-restore",
            backup_id="bk-1",
            target_app="wp",
            phase="Succeeded",
            started_at=T0,
            safety_backup_id="bk-s",
        )
    )
    runs = catalog.restore_runs("wp-restore")
    assert [(r.phase, r.safety_backup_id) for r in runs] == [("Succeeded", "bk-s")]


def test_naive_times_are_refused(catalog: Catalog) -> None:
    with pytest.raises(Exception, match="timezone-aware"):
        catalog.add_backup(
            Backup(backup_id="bk-n", app_id="a", app_name="a", backup_type="full", created_at=datetime(2026, 1, 1))
        )


def test_catalog_from_a_newer_lifeboat_is_refused(catalog_url: str) -> None:
    Catalog(catalog_url).close()
    engine = create_engine(catalog_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE schema_version SET version = 999"))
    engine.dispose()
    with pytest.raises(CatalogError, match="schema version 999, newer"):
        Catalog(catalog_url)


def test_unreachable_database_is_one_clear_error_without_password() -> None:
    with pytest.raises(CatalogError, match=r"cannot open the catalog postgresql://u:\*\*\*@127.0.0.1:1/db") as caught:
        Catalog("postgresql://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(caught.value)


def test_a_version_1_catalog_is_migrated_and_keeps_its_rows(catalog_url: str) -> None:
    first = Catalog(catalog_url)
    first.add_backup(a_backup("kept"))
    first.add_backup(a_backup("done", status=BackupStatus.COMPLETED, completed_at=T0 + timedelta(seconds=40)))
    first.close()
    engine = create_engine(catalog_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:  # what Lifeboat's first schema looked like
        connection.execute(text("DROP TABLE quiesced_containers"))
        connection.execute(text("DROP TABLE backup_tallies"))
        connection.execute(text("ALTER TABLE backups DROP COLUMN owner"))
        connection.execute(text("DROP TABLE known_policies"))
        connection.execute(text("DROP TABLE drills"))
        for table in ("notices", "alerts", "notice_cursors"):
            connection.execute(text(f"DROP TABLE {table}"))
        connection.execute(text("UPDATE schema_version SET version = 1"))
    engine.dispose()
    migrated = Catalog(catalog_url)
    assert migrated.previous_version == 1
    assert migrated.get_backup("kept").app_id == "wordpress001"
    assert migrated.get_backup("kept").owner == ""  # the column added by version 4
    [tally] = migrated.tallies()  # counted from the finished rows the catalog held
    assert (tally.app_id, tally.succeeded, tally.failed, tally.duration_sum) == ("wordpress001", 1, 0, 40.0)

    def quiesced(container: str, host: str) -> QuiescedContainer:
        return QuiescedContainer(
            container_id=container,
            container_name=f"{container}-1",
            app="wp",
            action="stopped",
            operation="b1",
            host=host,
            owner_pid=42,
            owner_started="123",
            since=T0,
        )

    entry = migrated.record_quiesced(quiesced("c1", "h1"))
    migrated.record_quiesced(quiesced("c2", "h2"))
    assert [e.container_id for e in migrated.quiesced_on("h1")] == ["c1"]
    assert entry.id is not None
    migrated.release_quiesced(entry.id)
    assert migrated.quiesced_on("h1") == []
    assert [e.container_id for e in migrated.quiesced_on("h2")] == ["c2"]
    [firing] = migrated.announce(a_notice("BackupFailed"), opens=True)  # the tables added by version 8
    assert firing.state == "firing" and migrated.notices_after("h1", 0) == [firing]
    migrated.close()


def a_notice(event: str, name: str = "blog", minutes: int = 0) -> Notice:
    return Notice(
        time=T0 + timedelta(minutes=minutes),
        host="h1",
        event=event,
        kind="BackupPolicy",
        name=name,
        policy=name,
        message=f"{event} of {name}",
    )


def test_a_warning_is_announced_once_while_it_holds_and_resolved_once(catalog: Catalog) -> None:
    assert catalog.notice_cursor("h1") == 0
    told = [catalog.announce(a_notice("BackupFailed", minutes=m), opens=True, repeat=True) for m in range(3)]
    assert [[n.state for n in batch] for batch in told] == [["firing"], ["repeat"], ["repeat"]]
    assert catalog.announce(a_notice("StorageUnreachable"), opens=True) != []
    assert catalog.announce(a_notice("StorageUnreachable"), opens=True) == []  # open: nothing more, not even a repeat
    assert catalog.announce(a_notice("BackupFailed", name="other"), opens=True)[0].state == "firing"  # its own alert
    [resolved, success] = catalog.announce(a_notice("BackupSucceeded", minutes=9), resolves=("BackupFailed",))
    assert (resolved.event, resolved.state, success.state) == ("BackupFailed", "resolved", "info")
    assert "since 2026-" in resolved.message and "BackupFailed of blog" in resolved.message
    assert catalog.announce(a_notice("BackupSucceeded"), resolves=("BackupFailed",), keep=False) == []
    assert {(a.event, a.name) for a in catalog.open_alerts()} == {
        ("StorageUnreachable", "blog"),
        ("BackupFailed", "other"),
    }
    assert catalog.announce(a_notice("BackupFailed", minutes=10), opens=True)[0].state == "firing"  # failing anew
    every = catalog.notices_after("h1", 0)
    assert len(every) == 8 and catalog.notices_after("h2", 0) == []
    catalog.move_notice_cursor("h1", every[4].id or 0)
    assert catalog.notice_cursor("h1") == every[4].id and catalog.notice_cursor("h2") == every[-1].id


def test_finished_backups_are_tallied_once_and_stay_counted_after_their_rows_go(catalog: Catalog) -> None:
    running = catalog.add_backup(a_backup("b1", policy="nightly", status=BackupStatus.IN_PROGRESS))
    assert catalog.tallies() == []
    running.status, running.completed_at, running.size_bytes = BackupStatus.COMPLETED, T0 + timedelta(seconds=3), 7
    catalog.save_backup(running)
    catalog.save_backup(running)  # saved again (items added, say): still one backup
    catalog.add_backup(a_backup("b2", policy="nightly", minutes=1, status=BackupStatus.FAILED, completed_at=T0))
    catalog.add_backup(a_backup("b3", app="other", status=BackupStatus.COMPLETED, completed_at=T0 + timedelta(hours=1)))
    catalog.delete_backup("b1")  # retention forgot it: it was still taken
    tallies = {(t.app_id, t.policy): t for t in catalog.tallies()}
    nightly = tallies[("wordpress001", "nightly")]
    assert (nightly.succeeded, nightly.failed, nightly.last_size_bytes) == (1, 1, 7)
    assert nightly.last_success == T0 and nightly.duration_sum == 3.0
    assert nightly.bucket_counts()[:2] == [1, 1]  # 0 s and 3 s: the 1 s and 5 s buckets
    other = tallies[("other", "")]
    assert other.succeeded == 1 and other.bucket_counts()[-1] == 0 and sum(other.bucket_counts()) == 1


_OPEN_AT = """
import sys, time
sys.path.insert(0, sys.argv[3])
from controller.catalog.catalog import BackupFilter, Catalog
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
catalog = Catalog(sys.argv[1])
print(catalog.count_backups(BackupFilter()))
"""


def test_processes_opening_a_new_catalog_at_the_same_moment_all_work(catalog_url: str) -> None:
    """Two `lifeboat` commands started at once on a new catalog: neither sees the other's
    half-made schema (before the schema lock, one failed with 'table backups already exists')."""
    root = str(Path(__file__).resolve().parents[3])
    start = time.time() + 3.0  # every process has imported SQLAlchemy by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, catalog_url, str(start), root],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    assert [(code, out.strip()) for code, out, _ in results] == [(0, "0")] * 4, [err for _, _, err in results]
    reopened = Catalog(catalog_url)
    assert reopened.previous_version == SCHEMA_VERSION
    reopened.close()
