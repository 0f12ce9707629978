"""Build a Storage, and find its passphrase, from a BackupStorage resource."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controller.errors import InvalidConfig
from controller.resources.backup_storage import BackupStorage
from controller.resources.secrets import read_secret
from controller.storage.base import Storage
from controller.storage.local import LocalStorage


def storage_for_resource(storage: BackupStorage) -> Storage:
    spec = storage.spec
    if spec.local is not None:
        return LocalStorage(Path(spec.local.path))
    raise InvalidConfig(f'BackupStorage "{storage.metadata.name}": S3 storages are not supported yet')


def passphrase_for_resource(storage: BackupStorage, environ: Mapping[str, str]) -> bytes:
    return read_secret(
        storage.spec.encryption.passphrase,
        environ,
        f'BackupStorage "{storage.metadata.name}" spec.encryption.passphrase',
    )
