"""Create or upgrade the catalog's tables, recording the schema version in the database.

A fresh database gets the current tables at once; an older one runs each migration after
its recorded version, in order, in one transaction per step. A database written by a newer
Lifeboat is refused rather than guessed at. Two processes starting at once on a new catalog
take turns (a file lock beside SQLite, an advisory lock on PostgreSQL): the second finds the
tables the first made.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlmodel import SQLModel

from controller.catalog.models import (
    Alert,
    Backup,
    BackupStatus,
    BackupTally,
    Drill,
    KnownPolicy,
    Notice,
    NoticeCursor,
    QuiescedContainer,
    SchemaVersion,
)
from controller.errors import CatalogError


def _add_quiesced_containers(connection: Connection) -> None:
    QuiescedContainer.__table__.create(connection)  # type: ignore[attr-defined]


def _add_backup_tallies(connection: Connection) -> None:
    """Counts start from the backups the catalog still holds (retention's removals before
    this version are not known)."""
    BackupTally.__table__.create(connection)  # type: ignore[attr-defined]
    tallies: dict[tuple[str, str], BackupTally] = {}
    table = Backup.__table__  # type: ignore[attr-defined]
    needed = ("backup_id", "app_id", "app_name", "backup_type", "policy", "status", "created_at", "completed_at")
    columns = [table.c[name] for name in (*needed, "size_bytes")]  # version 2's columns: later ones do not exist yet
    rows = connection.execute(select(*columns).order_by(table.c.created_at))
    for row in rows:
        backup = Backup.model_validate(dict(row._mapping))
        if backup.status not in (BackupStatus.COMPLETED, BackupStatus.FAILED):
            continue
        key = (backup.app_id, backup.policy or "")
        tallies.setdefault(key, BackupTally(app_id=key[0], policy=key[1])).count(backup)
    for tally in tallies.values():
        connection.execute(BackupTally.__table__.insert().values(**tally.model_dump()))  # type: ignore[attr-defined]


def _add_backup_owner(connection: Connection) -> None:
    connection.execute(text("ALTER TABLE backups ADD COLUMN owner VARCHAR DEFAULT '' NOT NULL"))


def _add_known_policies(connection: Connection) -> None:
    KnownPolicy.__table__.create(connection)  # type: ignore[attr-defined]


def _add_warnings_and_restore_recovery(connection: Connection) -> None:
    """Backups' warnings and their tally; what recovery needs of a restore run. (A table made
    by an earlier step from today's model has its columns already.)"""
    added = [
        ("backups", "warnings", "VARCHAR DEFAULT '' NOT NULL"),
        ("backups", "safety", "BOOLEAN DEFAULT FALSE NOT NULL"),
        ("backup_tallies", "warned", "INTEGER DEFAULT 0 NOT NULL"),
        ("backup_items", "tables", "INTEGER DEFAULT 0 NOT NULL"),
        ("backup_items", "rows", "INTEGER DEFAULT 0 NOT NULL"),
        *[("restore_runs", column, "VARCHAR DEFAULT '' NOT NULL") for column in ("host", "owner", "stage", "request")],
    ]
    for table, column, kind in added:
        if column not in {c["name"] for c in inspect(connection).get_columns(table)}:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))


def _add_drills(connection: Connection) -> None:
    Drill.__table__.create(connection)  # type: ignore[attr-defined]


def _add_notices(connection: Connection) -> None:
    for table in (Notice, Alert, NoticeCursor):
        SQLModel.metadata.tables[str(table.__tablename__)].create(connection)


# MIGRATIONS[n - 1] upgrades a version-n catalog to version n+1. Append; never edit.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _add_quiesced_containers,
    _add_backup_tallies,
    _add_backup_owner,
    _add_known_policies,
    _add_warnings_and_restore_recovery,
    _add_drills,
    _add_notices,
]
SCHEMA_VERSION = 1 + len(MIGRATIONS)


_ADVISORY_LOCK_KEY = 0x4C696665626F6174  # "Lifeboat": the schema lock on PostgreSQL


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """One process at a time creates or migrates the schema."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_schema(engine: Engine) -> int:
    """Bring the catalog to SCHEMA_VERSION; return the version it had before (0 when new)."""
    with _schema_lock(engine):
        return _ensure_schema(engine)


def _ensure_schema(engine: Engine) -> int:
    with engine.begin() as connection:
        existing = _recorded_version(connection)
        if existing == 0:
            SQLModel.metadata.create_all(connection)
            connection.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION))  # type: ignore[attr-defined]
            return 0
        if existing > SCHEMA_VERSION:
            raise CatalogError(
                f"the catalog has schema version {existing}, newer than this Lifeboat's {SCHEMA_VERSION}; "
                "upgrade Lifeboat or point it at another catalog"
            )
    for version in range(existing, SCHEMA_VERSION):
        with engine.begin() as connection:
            MIGRATIONS[version - 1](connection)
            connection.execute(
                SchemaVersion.__table__.update().values(version=version + 1)  # type: ignore[attr-defined]
            )
    return existing


def _recorded_version(connection: Connection) -> int:
    if not inspect(connection).has_table(SchemaVersion.__tablename__):
        return 0
    row = connection.execute(SchemaVersion.__table__.select()).first()  # type: ignore[attr-defined]
    return int(row.version) if row is not None else 0
