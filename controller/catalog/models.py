"""Catalog tables: the observed state. Ids are plain strings; nothing here knows the
repository format or Docker.

The backup record keeps the field names of the REST API's contract (backup_id, app_id, ...,
error_message) so the API can serve them as they are; the rest is what the controller needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which drops the offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("catalog times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class BackupStatus(StrEnum):
    PENDING = "pending"  # queued
    IN_PROGRESS = "in_progress"  # reading and uploading
    COMPLETED = "completed"  # every item succeeded and the snapshot is committed
    FAILED = "failed"  # some step failed; no snapshot is presented as complete


class ItemKind(StrEnum):
    VOLUME = "volume"  # a named Docker volume
    BIND_MOUNT = "bind_mount"  # a host directory mounted into a container
    PATH = "path"  # a host path from BackupPolicy.spec.paths
    DUMP = "dump"  # a database dump stream
    HOOK = "hook"  # a pre/post hook command
    DEFINITION = "definition"  # the app itself: Compose project files, container settings
    IMAGE = "image"  # an image saved as a `docker save` stream


class Backup(SQLModel, table=True):
    __tablename__ = "backups"

    backup_id: str = Field(primary_key=True)
    app_id: str = Field(index=True)
    app_name: str
    backup_type: str
    description: str = ""
    size_bytes: int = 0
    compressed: bool = True
    encrypted: bool = True
    storage_location: str = ""
    file_path: str | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None
    checksum: str | None = None
    status: BackupStatus = Field(default=BackupStatus.PENDING, index=True)
    created_at: datetime = _time(index=True)
    completed_at: datetime | None = _time(nullable=True)
    error_message: str | None = None
    # Beyond the API contract's record:
    policy: str | None = Field(default=None, index=True)
    storage: str = ""
    snapshot_id: str | None = None
    parent_id: str | None = None
    added_bytes: int = Field(default=0, sa_column_kwargs={"name": "bytes_added"})  # the repository's growth
    files: int = 0
    host: str = ""
    owner: str = ""  # "PID:START" of the process taking it (see host.Owner); "" before schema 4
    error_code: str | None = None
    warnings: str = ""  # "; "-separated "Reason: message" of a completed backup that lost data (schema 6)
    safety: bool = False  # taken by a restore of its app before it changed anything (schema 6)


@dataclass(frozen=True)
class SnapshotSummary:
    """What a committed snapshot holds, as the backup row records it."""

    snapshot_id: str
    parent_id: str | None
    size_bytes: int  # what the source holds
    added_bytes: int  # what the repository grew by
    files: int


@dataclass(frozen=True)
class BackupOutcome:
    """How a backup ended: its snapshot (when one was committed) and, when it failed, (code, message)."""

    completed_at: datetime
    snapshot: SnapshotSummary | None = None
    error: tuple[str, str] | None = None
    warnings: tuple[str, ...] = ()  # "Reason: message" of a completed backup that lost data
    backup_type: str | None = None  # what it turned out to be (an incremental with no parent is full)


class BackupItem(SQLModel, table=True):
    """One volume, path, dump or hook of a backup, with its own outcome."""

    __tablename__ = "backup_items"

    id: int | None = Field(default=None, primary_key=True)
    backup_id: str = Field(foreign_key="backups.backup_id", index=True)
    kind: ItemKind
    name: str
    bytes: int = 0
    files: int = 0
    exit_code: int | None = None
    error: str | None = None
    tables: int = 0  # a dump's tables and rows, counted from the dump itself (schema 6)
    rows: int = 0


class RestoreStage(StrEnum):
    """Where a Running restore run is, for recovery after its process died."""

    CHECKING = ""  # nothing changed yet
    WRITING = "writing"  # the target's data is being replaced
    ROLLING_BACK = "rolling-back"  # the safety backup is being put back


class RestoreRun(SQLModel, table=True):
    """One execution of a Restore resource (or an API/CLI restore)."""

    __tablename__ = "restore_runs"

    id: str = Field(primary_key=True)
    restore_name: str | None = Field(default=None, index=True)
    backup_id: str = Field(index=True)
    target_app: str
    phase: str
    safety_backup_id: str | None = None
    started_at: datetime = _time()
    completed_at: datetime | None = _time(nullable=True)
    message: str = ""
    # Schema 6: what recovery needs to finish a run whose process died.
    host: str = ""
    owner: str = ""  # "PID:START" of the process running it (see host.Owner)
    stage: str = ""  # a RestoreStage
    request: str = ""  # the run's request as JSON: what to apply again


class DrillResult(StrEnum):
    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"


class Drill(SQLModel, table=True):
    """One restore drill (schema 7): a backup restored into a throwaway clone and checked."""

    __tablename__ = "drills"

    id: str = Field(primary_key=True)
    policy: str = Field(index=True)
    app: str
    backup_id: str
    clone: str  # the throwaway project, removed at the end
    folder: str = ""  # its project folder, removed with it
    host: str = ""
    owner: str = ""  # "PID:START" of the process running it: recovery removes a dead drill's clone
    started_at: datetime = _time()
    completed_at: datetime | None = _time(nullable=True)
    duration_seconds: float | None = None  # start to every check passed (the RTO)
    result: str = DrillResult.RUNNING.value
    message: str = ""
    checks: str = "[]"  # JSON: [{"check", "passed", "detail"}]


class QuiescedContainer(SQLModel, table=True):
    """A container Lifeboat paused or stopped, written before it acts and removed after it
    resumed the container: what is left here after a crash is what repair starts again."""

    __tablename__ = "quiesced_containers"

    id: int | None = Field(default=None, primary_key=True)
    container_id: str = Field(index=True)
    container_name: str
    app: str = Field(index=True)
    action: str  # "paused" or "stopped"
    operation: str  # the backup id or restore run that did it
    host: str = Field(index=True)
    owner_pid: int
    owner_started: str  # the owner's process start time: a reused pid is not the owner
    since: datetime = _time()


class Event(SQLModel, table=True):
    """Something that happened to a resource, for `lifeboat describe` and the API."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = _time(index=True)
    kind: str = Field(index=True)
    name: str = Field(index=True)
    type: str = "Normal"  # Normal or Warning, as Kubernetes events
    reason: str
    message: str


class NoticeState(StrEnum):
    FIRING = "firing"  # something went wrong; an alert opened (or a one-off, such as a failed restore)
    REPEAT = "repeat"  # went wrong again while its alert is open: healthchecks pings it, messages do not
    RESOLVED = "resolved"  # the alert closed: what went wrong is right again
    INFO = "info"  # a success or a start, for the Notifiers that ask for it


class Notice(SQLModel, table=True):
    """Something people may need to hear about, written by the run or check that saw it, in
    any process on the host (the outbox): the controller of that host delivers it to the
    Notifiers that select it."""

    __tablename__ = "notices"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = _time()
    host: str = Field(index=True)
    event: str  # BackupFailed, BackupSucceeded, BackupStarted, ... (resources.notifier.NotifierEvent)
    state: str = NoticeState.INFO.value
    kind: str  # the subject: BackupPolicy, App, BackupStorage
    name: str
    app: str = ""
    policy: str = ""
    storage: str = ""
    object_id: str = ""  # the backup, restore run or drill it is about
    message: str = ""


class Alert(SQLModel, table=True):
    """An open warning: one per event and subject, from its first notice until it resolves.
    While it is open the same warning sends nothing more."""

    __tablename__ = "alerts"

    event: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    since: datetime = _time()
    message: str = ""


class NoticeCursor(SQLModel, table=True):
    """The last notice a host's controller handed to its Notifiers: a restart goes on from there."""

    __tablename__ = "notice_cursors"

    host: str = Field(primary_key=True)
    last_id: int = 0


# Upper bounds (seconds) of the backup duration histogram's buckets; +Inf is implied.
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


class BackupTally(SQLModel, table=True):
    """Finished backups counted per app and policy, kept when retention removes their rows:
    the metrics' counters never go down, and they survive controller restarts."""

    __tablename__ = "backup_tallies"

    app_id: str = Field(primary_key=True)
    policy: str = Field(primary_key=True)  # "" for backups outside any policy
    succeeded: int = 0
    failed: int = 0
    duration_sum: float = 0.0
    duration_buckets: str = ""  # counts per DURATION_BUCKETS entry, comma-separated (not cumulative)
    last_success: datetime | None = _time(nullable=True)
    last_size_bytes: int = 0
    warned: int = 0  # completed with a warning (a source empty, or shrunk by half): schema 6

    def bucket_counts(self) -> list[int]:
        counts = [int(n) for n in self.duration_buckets.split(",")] if self.duration_buckets else []
        return counts + [0] * (len(DURATION_BUCKETS) + 1 - len(counts))

    def count(self, backup: Backup) -> None:
        """Add one finished backup."""
        duration = (backup.completed_at - backup.created_at).total_seconds() if backup.completed_at else 0.0
        if backup.status == BackupStatus.COMPLETED:
            self.succeeded += 1
            self.last_success, self.last_size_bytes = backup.created_at, backup.size_bytes
            self.warned += 1 if backup.warnings else 0
        else:
            self.failed += 1
        self.duration_sum += max(duration, 0.0)
        counts = self.bucket_counts()
        slot = next((i for i, bound in enumerate(DURATION_BUCKETS) if duration <= bound), len(DURATION_BUCKETS))
        counts[slot] += 1
        self.duration_buckets = ",".join(str(n) for n in counts)


class KnownPolicy(SQLModel, table=True):
    """A policy the controller has seen, kept until its removal has been acted on: a policy
    file removed while the controller was down still gets its deletionPolicy."""

    __tablename__ = "known_policies"

    name: str = Field(primary_key=True)
    app: str | None = None
    storage: str
    deletion_policy: str


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    id: int = Field(default=1, primary_key=True)
    version: int
