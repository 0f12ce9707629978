"""One suite for every Storage: what the repository relies on, on memory and local disk."""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.errors import ObjectNotFound, StorageError, StorageUnavailable
from controller.storage.base import Storage
from controller.storage.local import LocalStorage, _translate
from controller.storage.memory import MemoryStorage
from controller.storage.s3 import MULTIPART_THRESHOLD, S3Settings, S3Storage
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Endpoint


@pytest.fixture(params=["memory", "local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "local":
        yield LocalStorage(tmp_path / "repo")
    else:
        endpoint: S3Endpoint = request.getfixturevalue("s3_endpoint")
        yield endpoint.storage(prefix="repos/one")


def test_save_then_load_whole_and_ranges(storage: Storage) -> None:
    data = bytes(range(256)) * 100
    assert storage.save("data/ab/abcd", data) is True
    assert storage.load("data/ab/abcd") == data
    assert storage.load("data/ab/abcd", 10, 20) == data[10:30]
    assert storage.load("data/ab/abcd", len(data) - 5) == data[-5:]
    assert storage.stat("data/ab/abcd").size == len(data)


def test_save_is_put_if_absent(storage: Storage) -> None:
    assert storage.save("snapshots/one", b"first") is True
    assert storage.save("snapshots/one", b"second") is False
    assert storage.load("snapshots/one") == b"first"


def test_missing_objects_are_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound):
        storage.load("index/nope")
    with pytest.raises(ObjectNotFound):
        storage.stat("index/nope")
    storage.remove("index/nope")  # removing a missing object is not an error


def test_list_by_prefix(storage: Storage) -> None:
    for key in ("data/00/0011", "data/ff/ff22", "index/i1", "snapshots/s1", "config"):
        storage.save(key, key.encode())
    assert sorted(i.key for i in storage.list("data/")) == ["data/00/0011", "data/ff/ff22"]
    assert sorted(i.key for i in storage.list("index/")) == ["index/i1"]
    assert [i.size for i in storage.list("snapshots/")] == [len(b"snapshots/s1")]
    assert list(storage.list("locks/")) == []


def test_remove(storage: Storage) -> None:
    storage.save("index/x", b"x")
    storage.remove("index/x")
    assert list(storage.list("index/")) == []


@pytest.mark.parametrize("key", ["../escape", "data/../../x", "/abs", "Data/x", "data//x", ""])
def test_keys_outside_the_alphabet_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        storage.save(key, b"x")


def test_local_objects_are_read_only_and_leave_no_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    storage.save("data/ab/abcd", b"payload")
    path = tmp_path / "repo" / "data" / "ab" / "abcd"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(path.parent) == ["abcd"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, StorageError),
        (errno.EACCES, StorageError),
        (errno.EROFS, StorageError),
        (errno.ENOENT, ObjectNotFound),
        (errno.EIO, StorageUnavailable),
        (errno.ETIMEDOUT, StorageUnavailable),
    ],
)
def test_local_errors_map_to_permanent_or_transient(code: int, expected: type[Exception]) -> None:
    translated = _translate(OSError(code, os.strerror(code)), "repo: saving data/x")
    assert type(translated) is expected
    assert "repo: saving data/x" in str(translated)


@pytest.mark.parametrize(
    ("key_id", "secret", "message"),
    [
        (ACCESS_KEY, "wrong-secret", "the secret access key is wrong"),
        ("unknown-key", SECRET_KEY, "the access key id is not known to the endpoint"),
    ],
)
def test_s3_credential_errors_are_permanent_and_say_which(
    s3_endpoint: S3Endpoint, key_id: str, secret: str, message: str
) -> None:
    storage = S3Storage(dataclasses.replace(s3_endpoint.settings(), access_key_id=key_id, secret_access_key=secret))
    with pytest.raises(StorageError, match=message) as caught:
        list(storage.list("keys/"))
    assert not isinstance(caught.value, StorageUnavailable)
    assert secret not in str(caught.value)
    with pytest.raises(StorageError, match=r"access denied \(check the credentials"):
        storage.save("config", b"x")  # a HEAD first: its 403 has no body to say more


def test_s3_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    storage = S3Storage(
        S3Settings(
            bucket="lifeboat-none",
            endpoint="http://127.0.0.1:9",
            region="us-east-1",
            path_style=True,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )
    )
    with pytest.raises(StorageUnavailable, match="endpoint unreachable"):
        storage.load("config")


def test_s3_large_objects_go_multipart_and_read_back(s3_endpoint: S3Endpoint) -> None:
    storage = s3_endpoint.storage(prefix="big")
    data = random.Random(7).randbytes(MULTIPART_THRESHOLD + 5 * 1024 * 1024)
    assert storage.save("data/ab/large", data) is True
    head = s3_endpoint.client().head_object(Bucket=storage.settings.bucket, Key="big/data/ab/large")
    assert head["ETag"].strip('"').endswith("-5")  # five 16 MiB parts: a multipart upload
    assert storage.load("data/ab/large") == data
    assert (
        storage.load("data/ab/large", MULTIPART_THRESHOLD, 1000)
        == data[MULTIPART_THRESHOLD : MULTIPART_THRESHOLD + 1000]
    )
