"""The global configuration file (the keys of the original `backup.yaml`) and where things live.

`${NAME}` and `${NAME:-default}` in the file are replaced from the environment before
parsing, so a secret can be kept out of the file. Precedence for each location:
command-line flag, then environment variable, then this file, then a per-user data dir.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.errors import InvalidConfig
from controller.resources.backup_policy import BackupType, Consistency

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageDefaults(_Section):
    local_path: str | None = Field(default=None, description="Default local repository directory.")


class EncryptionSettings(_Section):
    enabled: bool = True
    key_env: str = Field(
        default="LIFEBOAT_PASSPHRASE", description="Environment variable holding the repository passphrase."
    )


class CompressionSettings(_Section):
    enabled: bool = True
    level: int = Field(default=3, ge=1, le=22)


class Defaults(_Section):
    backup_type: BackupType = BackupType.INCREMENTAL
    consistency: Consistency = Consistency.ONLINE
    retention_days: int = Field(default=30, ge=0)
    timezone: str = "UTC"


class Limits(_Section):
    max_concurrent_backups: int = Field(default=2, ge=1)
    transfers: int = Field(default=2, ge=1, le=64, description="Uploads in flight per backup; raise it for distant S3.")
    max_backup_size_gb: float | None = Field(default=None, gt=0)
    max_concurrent_drills: int = Field(default=1, ge=1, description="Restore drills running at once in a process.")


class ApiKeyEntry(_Section):
    """An API key as the configuration keeps it: a hash, never the key."""

    name: str = Field(min_length=1, description="Who or what uses the key (shown in logs instead of the key).")
    role: Literal["admin", "read"] = Field(default="admin", description="read: GET requests only.")
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="sha256: and the hex digest of the key.")


class ApiSettings(_Section):
    listen: str = Field(default="127.0.0.1:8080", description='HOST:PORT the API listens on; "" for no API.')
    keys_file: str | None = Field(
        default=None, description="YAML list of API keys (written by `lifeboat apikey create`)."
    )
    keys: list[ApiKeyEntry] = Field(default_factory=list, description="API keys given in this file.")
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body accepted.")


class Config(_Section):
    resources: str | None = Field(default=None, description="Directory of resource files.")
    catalog: str | None = Field(default=None, description="Catalog database URL (sqlite:/// or postgresql://).")
    storage: StorageDefaults = Field(default_factory=StorageDefaults)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    compression: CompressionSettings = Field(default_factory=CompressionSettings)
    defaults: Defaults = Field(default_factory=Defaults)
    limits: Limits = Field(default_factory=Limits)
    api: ApiSettings = Field(default_factory=ApiSettings)


def substitute_environment(text: str, environ: Mapping[str, str], where: str) -> str:
    """Replace ${NAME} and ${NAME:-default}; an unset NAME without default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise InvalidConfig(f"{where}: ${{{name}}} is not set in the environment (or give ${{{name}:-default}})")

    return _VARIABLE.sub(replace, text)


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    """The configuration in `path`, or the defaults when no file is given."""
    if path is None:
        return Config()
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidConfig(f"{path}: cannot read the configuration file: {err.strerror}") from None
    try:
        data = yaml.safe_load(substitute_environment(raw, environ, str(path))) or {}
    except yaml.YAMLError as err:
        raise InvalidConfig(f"{path}: YAML syntax error: {err}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidConfig(f"{path} {field}: {first['msg']}") from None


def data_directory(environ: Mapping[str, str]) -> Path:
    """Per-user data directory (XDG), the last fallback for resources and catalog."""
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "/root")) / ".local" / "share")
    return Path(base) / "lifeboat"


def resources_directory(flag: str | None, config: Config, environ: Mapping[str, str]) -> Path:
    chosen = flag or environ.get("LIFEBOAT_RESOURCES") or config.resources
    return Path(chosen) if chosen else data_directory(environ) / "resources"


def catalog_url(flag: str | None, config: Config, environ: Mapping[str, str]) -> str:
    chosen = flag or environ.get("LIFEBOAT_CATALOG") or config.catalog
    return chosen or f"sqlite:///{data_directory(environ) / 'catalog.db'}"


def api_keys_file(config: Config, environ: Mapping[str, str]) -> Path:
    chosen = environ.get("LIFEBOAT_API_KEYS_FILE") or config.api.keys_file
    return Path(chosen) if chosen else data_directory(environ) / "api-keys.yaml"
