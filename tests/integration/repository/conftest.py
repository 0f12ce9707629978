"""The repository suites run unchanged on a local directory and on real S3 (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from tests.support.seaweedfs import S3Endpoint


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "repo")
    endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
    return endpoint.storage(prefix="repo")


def tamper(storage: Storage, key: str, data: bytes | None) -> None:
    """Replace (or with None, delete) an object behind the write-once API: corruption tests only."""
    if isinstance(storage, LocalStorage):
        path = storage.root / key
        if data is None:
            path.unlink()
            return
        path.chmod(0o644)
        path.write_bytes(data)
        return
    storage.remove(key)
    if data is not None:
        storage.save(key, data)
