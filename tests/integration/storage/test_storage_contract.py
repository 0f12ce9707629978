"""One suite for every Storage: what the repository relies on, on memory and local disk."""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from controller.errors import ObjectNotFound, StorageError, StorageFull, StorageUnavailable
from controller.storage.base import SpooledObject, Storage
from controller.storage.local import LocalStorage, _translate
from controller.storage.memory import MemoryStorage
from controller.storage.s3 import S3Settings, S3Storage
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


def spooled(folder: Path, data: bytes, trailing: bytes = b"") -> SpooledObject:
    """`data` as the first bytes of an unlinked file (a pack as its builder hands it over),
    followed by `trailing` bytes that are not part of it."""
    with tempfile.TemporaryFile(dir=folder) as handle:
        handle.write(data + trailing)
        handle.flush()
        return SpooledObject(os.dup(handle.fileno()), len(data))


def test_a_spooled_object_is_stored_as_its_first_bytes_and_read_only_during_the_call(
    storage: Storage, tmp_path: Path
) -> None:
    """Packs come as unlinked files: the stored object is exactly the `size` bytes, and the
    storage keeps nothing of the file once the call returns (its owner closes it)."""
    data = os.urandom(300_000)
    payload = spooled(tmp_path, data, trailing=b"not the object")
    assert storage.save("data/cd/cdef", payload) is True
    os.close(payload.fd)
    assert storage.load("data/cd/cdef") == data
    assert storage.stat("data/cd/cdef").size == len(data)


@pytest.mark.parametrize(("location", "imported"), [("{tmp}/repo", False), ("s3://bucket/prefix", True)])
def test_the_s3_client_is_only_imported_for_s3_locations(tmp_path: Path, location: str, imported: bool) -> None:
    """botocore takes 0.2 s to import: a local repository's commands must not pay it."""
    program = (
        "import sys\n"
        "from controller.storage.location import storage_for_location\n"
        f"storage_for_location({location.format(tmp=tmp_path)!r}, {{}})\n"
        "print('botocore' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == str(imported)


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
        (errno.ENOSPC, StorageFull),  # permanent too: a StorageError
        (errno.EDQUOT, StorageFull),
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
    ("code", "status", "expected", "message"),
    [
        # AWS's answers to a bucket in another region: SeaweedFS has no regions to produce them.
        ("PermanentRedirect", 301, StorageError, "the bucket is in another region"),
        ("AuthorizationHeaderMalformed", 400, StorageError, "the region does not match"),
        ("NoSuchBucket", 404, StorageError, "the bucket does not exist"),
        ("NoSuchKey", 404, ObjectNotFound, "not found"),
        ("SlowDown", 503, StorageUnavailable, "SlowDown"),
        ("", 500, StorageUnavailable, "500"),
    ],
)
def test_s3_error_answers_map_to_clear_errors(code: str, status: int, expected: type[Exception], message: str) -> None:
    storage = S3Storage(S3Settings(bucket="b", endpoint="http://127.0.0.1:9", region="eu-west-1"))
    answer: Any = {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    translated = storage._translate(ClientError(answer, "GetObject"), "loading config")
    assert type(translated) is expected
    assert message in str(translated) and "s3://b: loading config" in str(translated)


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


MiB = 1024 * 1024


def small_parts(endpoint: S3Endpoint, prefix: str) -> S3Storage:
    """Multipart from 10 MiB in 5 MiB parts (S3's smallest), so tests stay small."""
    settings = dataclasses.replace(endpoint.settings(prefix), multipart_threshold=10 * MiB, part_size=5 * MiB)
    return S3Storage(settings)


def count_part_uploads(storage: S3Storage) -> list[int]:
    """The part numbers the client sends, recorded by a botocore event hook (the calls are real)."""
    sent: list[int] = []
    storage._client.meta.events.register(
        "before-call.s3.UploadPart", lambda params, **_: sent.append(int(params["query_string"]["partNumber"]))
    )
    return sent


@pytest.mark.parametrize("in_a_file", [False, True], ids=["bytes", "spooled"])
def test_s3_large_objects_go_multipart_and_read_back(s3_endpoint: S3Endpoint, tmp_path: Path, in_a_file: bool) -> None:
    storage = small_parts(s3_endpoint, f"big-{in_a_file}")
    data = random.Random(7).randbytes(22 * MiB)
    assert storage.save("data/ab/large", spooled(tmp_path, data) if in_a_file else data) is True
    head = s3_endpoint.client().head_object(Bucket=storage.settings.bucket, Key=f"big-{in_a_file}/data/ab/large")
    assert head["ETag"].strip('"').endswith("-5")  # four 5 MiB parts and a 2 MiB one
    assert storage.load("data/ab/large") == data
    assert storage.load("data/ab/large", 10 * MiB - 10, 1000) == data[10 * MiB - 10 : 10 * MiB + 990]


def test_s3_interrupted_multipart_upload_resumes_from_its_completed_parts(s3_endpoint: S3Endpoint) -> None:
    storage = small_parts(s3_endpoint, "resume")
    data = random.Random(8).randbytes(22 * MiB)
    client, bucket, key = s3_endpoint.client(), storage.settings.bucket, "resume/data/cd/large"
    # A killed writer left parts 1 and 3 of this key behind, and a part 2 whose bytes are wrong.
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for number, body in ((1, data[: 5 * MiB]), (2, bytes(5 * MiB)), (3, data[10 * MiB : 15 * MiB])):
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body)
    sent = count_part_uploads(storage)
    assert storage.save("data/cd/large", data) is True
    assert sorted(sent) == [2, 4, 5]
    assert storage.load("data/cd/large") == data
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix="resume/").get("Uploads")


def test_s3_remove_incomplete_aborts_only_old_abandoned_uploads(s3_endpoint: S3Endpoint) -> None:
    storage = s3_endpoint.storage(prefix="abandoned")
    client, bucket = s3_endpoint.client(), storage.settings.bucket
    other = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/data/x")["UploadId"]
    client.create_multipart_upload(Bucket=bucket, Key="abandoned/data/ef/large")
    started = client.list_multipart_uploads(Bucket=bucket, Prefix="abandoned/")["Uploads"][0]["Initiated"]
    assert storage.remove_incomplete(started - timedelta(minutes=1)) == 0  # too young
    assert storage.remove_incomplete(started + timedelta(seconds=1)) == 1
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix="abandoned/").get("Uploads")
    remaining = client.list_multipart_uploads(Bucket=bucket, Prefix="elsewhere/")["Uploads"]
    assert [u["UploadId"] for u in remaining] == [other]  # another prefix's uploads are not ours


def test_local_remove_incomplete_drops_old_temp_files_only(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    storage.save("data/ab/abcd", b"kept")
    old_temp = tmp_path / "repo" / "data" / "ab" / ".tmp-0123"
    young_temp = tmp_path / "repo" / "data" / "ab" / ".tmp-4567"
    old_temp.write_bytes(b"half")
    young_temp.write_bytes(b"half")
    os.utime(old_temp, (1_700_000_000, 1_700_000_000))
    cutoff = datetime.fromtimestamp(1_700_000_100, UTC)
    assert storage.remove_incomplete(cutoff) == 1
    assert not old_temp.exists() and young_temp.exists()
    assert storage.load("data/ab/abcd") == b"kept"
