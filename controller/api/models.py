"""The API's request and response bodies: the API contract's names (snake_case), strict on input."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.catalog.models import Backup, Drill
from controller.resources.backup_policy import BackupType
from controller.resources.schedule import Frequency

Weekday = Literal["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"  # a DNS label, as resource and app names


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackupCreate(_Input):
    """The contract's body of POST /api/v1/backups/{app_id}; every field optional."""

    backup_type: BackupType | None = Field(default=None, description="Default: the app's policy, else incremental.")
    description: str = Field(default="", max_length=1000)
    include_database: bool = Field(default=True, description="Dump the app's databases.")
    include_uploads: bool = Field(default=True, description="Read the app's volumes and bind-mounted directories.")
    compress: bool = Field(default=True, description="false stores blobs uncompressed.")
    encrypt: bool = Field(default=True, description="Every Lifeboat repository is encrypted: false is refused.")
    storage_location: str | None = Field(
        default=None, max_length=63, description="BackupStorage name; default: the app's policy's, else the only one."
    )


class RestoreCreate(_Input):
    target_app: str | None = Field(default=None, pattern=NAME_PATTERN, description="Default: the backup's app.")
    stop_app: bool = Field(default=True, description="Stop the target's running containers while restoring.")
    databases: list[str] | None = Field(default=None, description="Database services to restore; all when unset.")
    volumes: list[str] | None = Field(default=None, description="Volume keys to restore; all when unset.")
    volume_map: dict[str, str] | None = Field(
        default=None, description="Snapshot volume key → Docker volume to write it into (when no mount matches)."
    )
    safety_backup: bool = Field(default=True, description="Back up the target's current state first.")
    verify: bool = Field(default=True, description="Wait for health checks after the restore.")
    exact_databases: bool = Field(default=False, description="Drop the databases the backup did not hold.")
    definition: bool = Field(default=False, description="Put back the app's project files and images too.")
    project_dir: str | None = Field(default=None, description="Where a recreated app's project folder goes.")
    force: bool = Field(default=False, description="Write a recreated app's project folder over other content.")
    keep_ports: bool = Field(default=False, description="A clone keeps the source's published host ports.")
    dry_run: bool = Field(default=False, description="Answer with what the restore would do; change nothing.")


class _FromAttributes(BaseModel):
    """Read from an object's attributes (a catalog row, a progress record)."""

    model_config = ConfigDict(from_attributes=True)


class ItemOut(_FromAttributes):
    kind: str
    name: str
    bytes: int
    files: int
    tables: int = Field(description="A dump's tables, counted from the dump (0 for other items).")
    rows: int = Field(description="A dump's rows, counted from the dump (0 for other items).")
    exit_code: int | None
    error: str | None


class ProgressOut(_FromAttributes):
    files: int
    bytes_read: int
    added_bytes: int = Field(validation_alias="bytes_added", description="What the repository grew by.")
    current: str


class BackupOut(BaseModel):
    """The contract's Backup model, plus what Lifeboat adds (policy, snapshot, parent, ...)."""

    backup_id: str
    app_id: str
    app_name: str
    backup_type: str
    description: str
    size_bytes: int
    compressed: bool
    encrypted: bool
    storage_location: str
    file_path: str | None
    s3_bucket: str | None
    s3_key: str | None
    checksum: str | None
    status: str
    created_at: datetime
    completed_at: datetime | None
    error_message: str | None
    error_code: str | None
    policy: str | None
    storage: str
    snapshot_id: str | None
    parent_id: str | None
    added_bytes: int = Field(description="What the repository grew by (size_bytes: what the source holds).")
    files: int
    safety: bool = Field(description="Taken by a restore of its app before it changed anything.")
    warnings: list[str] = Field(description="What a completed backup lost: a source empty, or shrunk by half.")
    url: str

    @classmethod
    def of(cls, row: Backup) -> BackupOut:
        fields = {name: getattr(row, name) for name in BackupOut.model_fields if name not in ("url", "warnings")}
        fields["status"] = row.status.value
        fields["warnings"] = row.warnings.split("; ") if row.warnings else []
        return cls(**fields, url=f"/api/v1/backups/{row.backup_id}")


class BackupDetail(BackupOut):
    items: list[ItemOut] = Field(default_factory=list)
    progress: ProgressOut | None = None


class BackupPage(BaseModel):
    items: list[BackupOut]
    total: int
    page: int
    page_size: int


class RestoreStepOut(_FromAttributes):
    phase: str
    files: int
    bytes: int


class RestoreOut(BaseModel):
    restore_id: str
    backup_id: str | None
    target_app: str | None
    phase: str
    message: str
    safety_backup_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    elapsed_seconds: float | None
    progress: RestoreStepOut | None = Field(default=None, description="Where a running restore is.")
    url: str


class BackupSchedule(_Input):
    """The contract's schedule view of a BackupPolicy of one app."""

    app_id: str = Field(pattern=NAME_PATTERN)
    policy: str | None = Field(default=None, pattern=NAME_PATTERN, description="Default: the app's name.")
    enabled: bool = True
    cron: str | None = Field(default=None, description="Cron expression; or use frequency and time.")
    frequency: Frequency | None = None
    time: str | None = Field(
        default=None, pattern=r"^([01]?\d|2[0-3]):[0-5]\d$", description='"HH:MM", with frequency.'
    )
    day_of_week: Weekday | None = None
    day_of_month: int | None = Field(default=None, ge=1, le=31)
    timezone: str = Field(default="UTC", pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
    backup_type: BackupType = BackupType.INCREMENTAL
    retention_days: int | None = Field(default=None, ge=0)
    keep_last: int | None = Field(default=None, ge=0)
    storage_location: str | None = Field(default=None, description="BackupStorage name; default: the only one.")
    include_database: bool = True
    include_uploads: bool = True


class ScheduleOut(BaseModel):
    app_id: str | None
    policy: str
    managed_by_api: bool
    enabled: bool
    cron: str | None
    frequency: str | None
    time: str | None
    day_of_week: str | None
    day_of_month: int | None
    timezone: str | None
    backup_type: str
    retention_days: int | None
    keep_last: int | None
    storage_location: str
    include_database: bool
    include_uploads: bool
    next_run_at: datetime | None
    last_backup_at: datetime | None
    ready: bool | None
    message: str


class TreeChangesOut(BaseModel):
    path: str
    host_path: str
    add: list[str]
    change: list[str]
    delete: list[str]


class DumpLoadOut(BaseModel):
    path: str
    container: str
    databases: dict[str, dict[str, int]] | None = Field(description="Its databases' tables and rows, when counted.")


class RestorePreviewOut(BaseModel):
    """What a restore would do (dry_run): nothing was changed."""

    backup_id: str
    target_app: str
    would_change: bool
    trees: list[TreeChangesOut]
    dumps: list[DumpLoadOut]
    stopping: list[str]
    notes: list[str]
    rebuild: str | None = None


class DrillOut(_FromAttributes):
    """A restore drill: the backup restored into a throwaway clone and checked."""

    id: str
    policy: str
    app: str
    backup_id: str
    result: str = Field(description="Running, Passed or Failed.")
    message: str
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: float | None = Field(description="Start to every check passed (the RTO).")
    checks: list[dict[str, Any]] = Field(description="Each check: check, passed, detail.")
    url: str

    @classmethod
    def of(cls, drill: Drill) -> DrillOut:
        return cls.model_validate(
            {**drill.model_dump(), "checks": json.loads(drill.checks), "url": f"/api/v1/drills/{drill.id}"}
        )


class RestoreAccepted(BaseModel):
    restore_id: str
    phase: str
    url: str


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
