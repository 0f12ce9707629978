"""BackupPolicy: what to back up (an app or host paths), when, and how long to keep it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from controller.resources.meta import (
    API_VERSION,
    ApiVersion,
    Condition,
    DnsLabel,
    Model,
    ObjectMeta,
    SecretRef,
    StatusMode,
)
from controller.resources.schedule import Schedule, parse_duration


class Consistency(StrEnum):
    ONLINE = "online"  # dump databases, read files while the app runs
    PAUSE = "pause"  # dump, then pause the app's running containers while volumes are read
    STOP = "stop"  # dump, then stop the app's running containers while volumes are read


class BackupType(StrEnum):
    FULL = "full"  # re-read every file
    INCREMENTAL = "incremental"  # skip files unchanged since the app's previous backup
    DIFFERENTIAL = "differential"  # skip files unchanged since the app's last full backup


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"  # removing the policy keeps its backups
    DELETE = "Delete"  # removing the policy forgets its backups


class OnError(StrEnum):
    FAIL = "fail"  # a failed hook fails the backup
    CONTINUE = "continue"  # a failed hook is recorded and the backup goes on


class ImagesMode(StrEnum):
    AUTO = "auto"  # save the images no registry can give back (built or loaded on this host)
    ALWAYS = "always"  # save every image of the app
    NEVER = "never"  # record images by reference and digest only


class DatabaseEngine(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    MARIADB = "mariadb"
    MONGODB = "mongodb"


class Include(Model):
    volumes: list[str] = Field(
        default_factory=lambda: ["*"], description="Named volumes to read (glob patterns); [] for none."
    )
    bind_mounts: bool = Field(default=True, description="Read the app's bind-mounted host directories.")
    databases: bool = Field(default=True, description="Dump the app's databases.")
    definition: bool = Field(
        default=True,
        description="Record the app itself (Compose files, .env, images, container settings) so a restore can "
        "recreate it on a host that lacks it.",
    )
    images: ImagesMode = Field(
        default=ImagesMode.AUTO,
        description="Which images to save into the repository: auto (those no registry can give back), always, never.",
    )


class DatabaseOverride(Model):
    service: str = Field(description="Compose service running the database.")
    engine: DatabaseEngine | None = Field(default=None, description="When the image does not tell.")
    names: list[str] = Field(default_factory=list, description="Databases to dump; all when empty.")
    username: str | None = Field(default=None, description="User for the dump; from the environment when unset.")
    password: SecretRef | None = Field(default=None, description="Password reference; from the container when unset.")


class Hook(Model):
    service: str = Field(description="Compose service whose container runs the command.")
    command: list[str] = Field(min_length=1, description="argv run with docker exec.")
    timeout_seconds: int = Field(default=300, ge=1, le=86400)
    on_error: OnError = OnError.FAIL


class Hooks(Model):
    pre: list[Hook] = Field(default_factory=list)
    post: list[Hook] = Field(default_factory=list)


class Retention(Model):
    days: int | None = Field(default=None, ge=0, description="Keep every backup younger than this many days.")
    keep_last: int | None = Field(default=None, ge=0)
    keep_daily: int | None = Field(default=None, ge=0)
    keep_weekly: int | None = Field(default=None, ge=0)
    keep_monthly: int | None = Field(default=None, ge=0)
    keep_yearly: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _at_least_one_rule(self) -> Retention:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError(
                "expected at least one rule: days, keepLast, keepDaily, keepWeekly, keepMonthly or keepYearly"
            )
        return self


class Compression(StrEnum):
    OFF = "off"  # store blobs as they are
    AUTO = "auto"  # zstd at a fast level, raw when it does not help
    MAX = "max"  # zstd at a slow, tight level


class SqlCheck(Model):
    service: str = Field(description="The database service.")
    database: str = Field(description="The database to query.")
    query: str = Field(description="A query returning one value.")
    expect: str = Field(description="That value, as text.")


class HttpCheck(Model):
    service: str
    port: int = Field(ge=1, le=65535, description="The port the service listens on inside its container.")
    path: str = "/"
    expect_status: int = Field(default=200, ge=100, le=599)


class FileCheck(Model):
    service: str
    path: str = Field(description="Exists in that service's container.")


class CommandCheck(Model):
    service: str
    command: list[str] = Field(min_length=1, description="argv run in that service's container: exits 0.")


class DrillCheck(Model):
    """One of sql, http, file, command."""

    sql: SqlCheck | None = None
    http: HttpCheck | None = None
    file: FileCheck | None = None
    command: CommandCheck | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DrillCheck:
        given = [name for name in ("sql", "http", "file", "command") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of sql, http, file, command; got {', '.join(given) or 'none'}")
        return self

    @property
    def named(self) -> str:
        """How results name it: "sql wordpress: SELECT COUNT(*) FROM posts"."""
        if self.sql is not None:
            return f"sql {self.sql.service}/{self.sql.database}: {self.sql.query}"
        if self.http is not None:
            return f"http {self.http.service}:{self.http.port}{self.http.path}"
        if self.file is not None:
            return f"file {self.file.service}:{self.file.path}"
        assert self.command is not None
        return f"command {self.command.service}: {' '.join(self.command.command)}"


class Verify(Model):
    schedule: Schedule | None = Field(default=None, description="When to drill; on demand only when unset.")
    checks: list[DrillCheck] = Field(default_factory=list, description="Run in the restored clone; all must pass.")
    timeout_seconds: int = Field(default=900, ge=10, le=86400, description="For the whole drill.")


class BackupPolicySpec(Model):
    app: DnsLabel | None = Field(default=None, description="Compose project name of the app to back up.")
    paths: list[str] = Field(default_factory=list, description="Host paths to back up (absolute).")
    include: Include = Field(default_factory=Include)
    databases: list[DatabaseOverride] = Field(default_factory=list, description="Per-service database settings.")
    consistency: Consistency = Consistency.ONLINE
    hooks: Hooks = Field(default_factory=Hooks)
    schedule: Schedule | None = Field(default=None, description="When to back up; manual only when unset.")
    rpo: str | None = Field(
        default=None,
        description='Recovery point objective ("26h", "90m", "1d12h"): BackupOverdue when the latest successful '
        "backup is older. Default: the schedule's next run after it, plus half an interval.",
    )
    verify: Verify | None = Field(
        default=None, description="Restore drills: the latest backup restored into a throwaway clone and checked."
    )
    backup_type: BackupType = BackupType.INCREMENTAL
    retention: Retention
    storage: DnsLabel = Field(description="Name of the BackupStorage that receives the backups.")
    compression: Compression = Compression.AUTO
    suspend: bool = Field(default=False, description="Stop scheduling; existing backups are untouched.")
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    status_mode: StatusMode = StatusMode.INLINE

    @field_validator("rpo")
    @classmethod
    def _valid_rpo(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("paths")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"expected absolute paths, got {path!r}")
        return value

    @model_validator(mode="after")
    def _something_to_back_up(self) -> BackupPolicySpec:
        if self.app is None and not self.paths:
            raise ValueError("expected 'app' (a Compose project) or 'paths' (host directories), or both")
        return self


class LastBackup(Model):
    id: str
    time: datetime
    type: BackupType
    size_bytes: int = Field(default=0, description="What the source holds.")
    added_bytes: int = Field(default=0, description="What the repository grew by.")
    duration_seconds: float = 0.0
    warnings: list[str] = Field(
        default_factory=list, description="What the backup lost: a source empty, or shrunk by half (reason: message)."
    )


class LastDrill(Model):
    backup_id: str
    time: datetime
    duration_seconds: float | None = Field(default=None, description="Start to every check passed (the RTO).")
    result: str = Field(description="Passed or Failed.")


class BackupCounts(Model):
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    retained: int = 0


class BackupPolicyStatus(Model):
    observed_generation: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    last_backup: LastBackup | None = None
    last_drill: LastDrill | None = None
    next_drill_at: datetime | None = None
    last_successful_backup_time: datetime | None = None
    next_run_at: datetime | None = None
    counts: BackupCounts = Field(default_factory=BackupCounts)
    last_error: str | None = None


class BackupPolicy(Model):
    api_version: ApiVersion = API_VERSION
    kind: Literal["BackupPolicy"] = "BackupPolicy"
    metadata: ObjectMeta
    spec: BackupPolicySpec
    status: BackupPolicyStatus | None = None
