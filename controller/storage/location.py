"""A storage from a location string, as `--repo` gives it: `/path`, `local:/path`."""

from __future__ import annotations

from pathlib import Path

from controller.errors import StorageError
from controller.storage.base import Storage
from controller.storage.local import LocalStorage


def storage_for_location(location: str) -> Storage:
    if location.startswith("s3://"):
        raise StorageError(f"{location}: S3 repositories are not supported yet; use a local path")
    path = location.removeprefix("local:")
    if not path:
        raise StorageError("--repo: expected a directory path")
    return LocalStorage(Path(path))
