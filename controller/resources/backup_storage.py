"""BackupStorage: where backups live (a local directory or an S3 bucket) and how they are sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from controller.resources.meta import API_VERSION, ApiVersion, Condition, Model, ObjectMeta, SecretRef, StatusMode
from controller.resources.schedule import Schedule


class LocalLocation(Model):
    path: str = Field(description="Absolute directory on the controller's host holding the repository.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"expected an absolute path, got {value!r}")
        return value


class S3Credentials(Model):
    access_key_id: SecretRef
    secret_access_key: SecretRef


class S3Location(Model):
    bucket: str = Field(description="Bucket name (must already exist).", min_length=3, max_length=63)
    prefix: str = Field(default="", description="Key prefix under which the repository lives.")
    endpoint: str | None = Field(default=None, description="URL of an S3-compatible endpoint; AWS when unset.")
    region: str | None = Field(default=None, description="Region name; from the AWS chain when unset.")
    path_style: bool = Field(default=False, description="Address the bucket in the path, not the host name.")
    credentials: S3Credentials | None = Field(
        default=None, description="Secret references; the standard AWS credential chain when unset."
    )

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value


class Encryption(Model):
    passphrase: SecretRef = Field(description="Unlocks the repository's master key. There is no default key.")


class Maintenance(Model):
    prune: Schedule | None = Field(default=None, description="When unreferenced data is pruned.")
    check: Schedule | None = Field(default=None, description="When the repository structure is checked.")
    check_read_data_percent: int = Field(
        default=0, ge=0, le=100, description="Share of packs whose data each check decrypts and verifies."
    )
    read_data_cycle_days: int | None = Field(
        default=None,
        ge=1,
        description="Rolling verification: each check reads the packs its share of the cycle reached since the "
        "previous check, so that every pack's data is read within this many days (instead of a random share).",
    )


class BackupStorageSpec(Model):
    local: LocalLocation | None = None
    s3: S3Location | None = None
    encryption: Encryption
    quota_bytes: int | None = Field(default=None, ge=1, description="Refuse backups past this repository size.")
    maintenance: Maintenance = Field(default_factory=Maintenance)
    status_mode: StatusMode = Field(default=StatusMode.INLINE, description="inline or sidecar status.")

    @model_validator(mode="after")
    def _one_location(self) -> BackupStorageSpec:
        if (self.local is None) == (self.s3 is None):
            raise ValueError("expected exactly one of 'local' or 's3'")
        return self


class CheckResult(Model):
    time: datetime
    ok: bool
    message: str = ""


class BackupStorageStatus(Model):
    observed_generation: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    reachable: bool | None = None
    size_bytes: int | None = None
    snapshots: int | None = None
    last_check: CheckResult | None = None
    last_prune: datetime | None = None
    read_data_cycle_completed_at: datetime | None = Field(
        default=None, description="When a rolling verification last finished reading every pack."
    )


class BackupStorage(Model):
    api_version: ApiVersion = API_VERSION
    kind: Literal["BackupStorage"] = "BackupStorage"
    metadata: ObjectMeta
    spec: BackupStorageSpec
    status: BackupStorageStatus | None = None
