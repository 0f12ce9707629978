"""A storage from a location string, as `--repo` gives it: `/path`, `local:/path` or
`s3://BUCKET/PREFIX`. S3 settings come from the standard variables (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) or the AWS credential chain; a
custom endpoint is addressed path-style, as S3-compatible stores expect."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controller.errors import StorageError
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from controller.storage.retrying import RetryingStorage


def storage_for_location(location: str, environ: Mapping[str, str]) -> Storage:
    if location.startswith("s3://"):
        # Imported here: botocore takes 0.2 s to import, a tenth of a local app backup.
        from controller.storage.s3 import S3Settings, S3Storage

        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise StorageError(f"{location}: expected s3://BUCKET/PREFIX")
        endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        settings = S3Settings(
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
            path_style=endpoint is not None,
        )
        return RetryingStorage(S3Storage(settings))
    path = location.removeprefix("local:")
    if not path:
        raise StorageError("--repo: expected a directory path or s3://BUCKET/PREFIX")
    return RetryingStorage(LocalStorage(Path(path)))
