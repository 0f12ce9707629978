"""The repository suites run unchanged on a local directory and on real S3 (SeaweedFS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.storage.base import Storage
from controller.storage.local import LocalStorage
from controller.storage.s3 import S3Storage
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


def abandon_a_write(storage: Storage, key: str) -> None:
    """Leave what a writer killed mid-save leaves: a temp file (local) or an unfinished multipart upload (S3)."""
    if isinstance(storage, LocalStorage):
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / ".tmp-killed").write_bytes(b"half a pack")
        return
    assert isinstance(storage, S3Storage)
    storage._client.create_multipart_upload(Bucket=storage.settings.bucket, Key=storage._key(key))


def abandoned_writes(storage: Storage) -> int:
    if isinstance(storage, LocalStorage):
        return len(list(storage.root.rglob(".tmp-*")))
    assert isinstance(storage, S3Storage)
    answer = storage._client.list_multipart_uploads(Bucket=storage.settings.bucket, Prefix=storage._key("data"))
    return len(answer.get("Uploads", []))
