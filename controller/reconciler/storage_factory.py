"""Build a Storage, and find its passphrase, from a BackupStorage resource."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controller.resources.backup_storage import BackupStorage
from controller.resources.secrets import read_secret
from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from controller.storage.retrying import RetryingStorage
from controller.storage.s3 import S3Settings, S3Storage


def storage_for_resource(storage: BackupStorage, environ: Mapping[str, str]) -> Storage:
    spec = storage.spec
    if spec.local is not None:
        return RetryingStorage(LocalStorage(Path(spec.local.path)))
    assert spec.s3 is not None  # the model guarantees exactly one location
    where = f'BackupStorage "{storage.metadata.name}" spec.s3.credentials'
    key_id = secret = None
    if spec.s3.credentials is not None:
        key_id = read_secret(spec.s3.credentials.access_key_id, environ, f"{where}.accessKeyId").decode()
        secret = read_secret(spec.s3.credentials.secret_access_key, environ, f"{where}.secretAccessKey").decode()
    settings = S3Settings(
        bucket=spec.s3.bucket,
        prefix=spec.s3.prefix,
        endpoint=spec.s3.endpoint,
        region=spec.s3.region,
        path_style=spec.s3.path_style,
        access_key_id=key_id,
        secret_access_key=secret,
    )
    return RetryingStorage(S3Storage(settings))


def passphrase_for_resource(storage: BackupStorage, environ: Mapping[str, str]) -> bytes:
    return read_secret(
        storage.spec.encryption.passphrase,
        environ,
        f'BackupStorage "{storage.metadata.name}" spec.encryption.passphrase',
    )
