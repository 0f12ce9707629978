"""Restore: a one-shot request to bring an app back to a backup. A terminal phase is final."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from controller.resources.meta import API_VERSION, ApiVersion, Condition, DnsLabel, Model, ObjectMeta, StatusMode

# RFC 3339 date-time: full date, 'T' (or space), time, mandatory offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class RestorePhase(StrEnum):
    PENDING = "Pending"  # accepted, waiting for its app to be free
    RUNNING = "Running"  # side effects have started
    SUCCEEDED = "Succeeded"  # the app runs on the restored data
    FAILED = "Failed"  # nothing was changed, or the change could not be undone (message says which)
    ROLLED_BACK = "RolledBack"  # the restore failed and the safety backup was put back


class RestoreSpec(Model):
    backup: str | None = Field(default=None, description="Id of the backup to restore.")
    policy: DnsLabel | None = Field(default=None, description="Restore from this policy's backups.")
    point_in_time: datetime | None = Field(
        default=None,
        description="RFC 3339 instant: the latest successful backup at or before it (with 'policy').",
    )
    target_app: DnsLabel | None = Field(default=None, description="App to restore into; the source app by default.")
    volumes: list[str] | None = Field(default=None, description="Volumes to restore; all when unset.")
    databases: list[str] | None = Field(default=None, description="Database services to restore; all when unset.")
    volume_map: dict[str, str] = Field(
        default_factory=dict,
        description="Snapshot volume key → name of the Docker volume to write it into, for a volume that "
        "matches nothing the target mounts at the recorded destination.",
    )
    dry_run: bool = Field(
        default=False,
        description="Only say what the restore would do (files to add, change and delete; dumps; containers) in "
        "the status, and change nothing.",
    )
    exact_databases: bool = Field(
        default=False,
        description="Drop the databases the target's server holds that the backup did not; by default they are "
        "left alone and named in the status.",
    )
    definition: bool = Field(
        default=False,
        description="Put back the app's project files and images as well as its data (undo an upgrade). An app "
        "this host lacks is always recreated from the backup's definition.",
    )
    project_dir: str | None = Field(
        default=None, description="Where a recreated app's project folder is written; default: where it was."
    )
    force: bool = Field(default=False, description="Write a recreated app's project folder over other content.")
    keep_ports: bool = Field(
        default=False, description="A clone (targetApp a new name) keeps the source's published host ports."
    )
    stop_app: bool = Field(default=True, description="Stop the target's running containers during the restore.")
    safety_backup: bool = Field(default=True, description="Back up the target's current state first.")
    verify: bool = Field(default=True, description="Wait for the app's health checks after the restore.")
    status_mode: StatusMode = Field(default=StatusMode.INLINE, description="inline or sidecar status.")

    @field_validator("point_in_time", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("expected an RFC 3339 time with an offset, e.g. 2026-11-20T02:00:00Z")
            return value
        if not isinstance(value, str) or not _RFC3339.match(value):
            raise ValueError(f"expected an RFC 3339 time such as 2026-11-20T02:00:00Z, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> RestoreSpec:
        if (self.backup is None) == (self.policy is None):
            raise ValueError("expected exactly one of 'backup' (an id) or 'policy' (with optional pointInTime)")
        if self.point_in_time is not None and self.policy is None:
            raise ValueError("'pointInTime' needs 'policy'")
        return self


class RestoreProgress(Model):
    phase: str = Field(description="What the running restore does now: planning, safety backup, writing PATH, ...")
    files: int = Field(default=0, description="Files written in this phase.")
    bytes: int = Field(default=0, description="Bytes written in this phase.")


class RestoreStatus(Model):
    observed_generation: str | None = None
    phase: RestorePhase = RestorePhase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    backup_id: str | None = Field(default=None, description="The backup resolved from spec.")
    safety_backup_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str = ""
    progress: RestoreProgress | None = Field(default=None, description="Where a Running restore is.")


class Restore(Model):
    api_version: ApiVersion = API_VERSION
    kind: Literal["Restore"] = "Restore"
    metadata: ObjectMeta
    spec: RestoreSpec
    status: RestoreStatus | None = None
