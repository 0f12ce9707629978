"""Objects in an S3 bucket (AWS, MinIO, SeaweedFS, Ceph) under a key prefix.

botocore's errors never leave this module: a missing key is ObjectNotFound; throttling,
5xx and connection failures are StorageUnavailable (retried by storage/retrying.py);
anything else (no such bucket, access denied, wrong region) is a StorageError whose
message says which. Put-if-absent is a HEAD before the PUT: objects are content-addressed,
so two writers racing on one key write the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.session
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError

from controller.errors import ObjectNotFound, StorageError, StorageUnavailable
from controller.storage.base import ObjectInfo, Payload, SpooledObject, check_key, payload_bytes, payload_parts

_MISSING = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT = {
    "500",
    "502",
    "503",
    "504",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeTooSkewed",
}
_EXPLAINED = {
    "NoSuchBucket": "the bucket does not exist (create it first)",
    "AccessDenied": "access denied (check the credentials and the bucket policy)",
    "InvalidAccessKeyId": "the access key id is not known to the endpoint",
    "SignatureDoesNotMatch": "the secret access key is wrong",
    "PermanentRedirect": "the bucket is in another region (set region)",
    "AuthorizationHeaderMalformed": "the region does not match the bucket's (set region)",
}


_MD5_PART = 1024 * 1024


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    path_style: bool = False
    access_key_id: str | None = None  # None: the standard AWS credential chain
    secret_access_key: str | None = None
    max_connections: int = 16
    multipart_threshold: int = 64 * 1024 * 1024  # objects this large go up in parts
    part_size: int = 16 * 1024 * 1024  # S3 requires at least 5 MiB for all parts but the last


class S3Storage:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._prefix = settings.prefix.strip("/") + "/" if settings.prefix.strip("/") else ""
        config = Config(
            region_name=settings.region,
            s3={"addressing_style": "path" if settings.path_style else "auto"},
            retries={"max_attempts": 1, "mode": "standard"},  # retries belong to storage/retrying.py
            max_pool_connections=settings.max_connections,
            connect_timeout=10,
            read_timeout=60,
        )
        # botocore's own session, not boto3's: boto3 adds nothing used here, and its import
        # (s3transfer) and client set-up cost 80 ms of each command's start on S3.
        self._client: Any = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            config=config,
        )

    def describe(self) -> str:
        return f"s3://{self.settings.bucket}/{self._prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _translate(self, err: Exception, what: str) -> Exception:
        where = f"{self.describe()}: {what}"
        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _MISSING or (status == "404" and code not in _EXPLAINED):
                return ObjectNotFound(f"{where}: not found")
            if code in _TRANSIENT or status.startswith("5"):
                return StorageUnavailable(f"{where}: {code or status} (temporary)")
            if code == "403":  # HEAD answers carry no error body: only the status is known
                code = "AccessDenied"
            return StorageError(f"{where}: {_EXPLAINED.get(code, code or status)}")
        if isinstance(err, EndpointConnectionError | ConnectionError):
            return StorageUnavailable(f"{where}: endpoint unreachable ({self.settings.endpoint or 'AWS'})")
        return StorageUnavailable(f"{where}: {err.__class__.__name__}")

    def save(self, key: str, data: Payload) -> bool:
        full = self._key(key)
        try:
            if self._exists(full):
                return False
            if len(data) >= self.settings.multipart_threshold:
                self._upload_multipart(full, data)
            else:
                digest = _md5(data).digest()
                body = data.reader() if isinstance(data, SpooledObject) else data  # sent from its file
                self._client.put_object(
                    Bucket=self.settings.bucket, Key=full, Body=body, ContentMD5=base64.b64encode(digest).decode()
                )
            return True
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, f"saving {key}") from None
        except OSError as err:  # reading a SpooledObject's file: not the endpoint's fault, not retried
            raise StorageError(f"{self.describe()}: saving {key}: its local file could not be read: {err}") from None

    def _upload_multipart(self, full: str, data: Payload) -> None:
        """Upload in parts, reusing the parts an interrupted upload of the same key left behind.

        Keys name their content, so an abandoned upload under this key carries the same
        bytes: a stored part whose size and MD5 match is kept, the others are sent. A part is
        read from a SpooledObject only when it is sent.
        """
        bucket, size = self.settings.bucket, self.settings.part_size
        starts = dict(enumerate(range(0, len(data), size), 1))
        upload_id, stored = self._abandoned_upload(full)
        if upload_id is None:
            upload_id = self._client.create_multipart_upload(Bucket=bucket, Key=full)["UploadId"]

        def send(number: int) -> dict[str, Any]:
            offset = starts[number]
            part = payload_bytes(data, offset, min(size, len(data) - offset))
            digest = hashlib.md5(part, usedforsecurity=False)
            etag = f'"{digest.hexdigest()}"'
            if stored.get(number) != (etag, len(part)):
                answer = self._client.upload_part(
                    Bucket=bucket,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                    ContentMD5=base64.b64encode(digest.digest()).decode(),
                )
                etag = answer["ETag"]
            return {"PartNumber": number, "ETag": etag}

        with ThreadPoolExecutor(max_workers=4) as pool:
            completed = list(pool.map(send, sorted(starts)))
        try:
            self._client.complete_multipart_upload(
                Bucket=bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": completed}
            )
        except ClientError as err:
            # Another writer completed the same upload first: the object is there.
            if str(err.response.get("Error", {}).get("Code", "")) != "NoSuchUpload" or not self._exists(full):
                raise

    def _abandoned_upload(self, full: str) -> tuple[str | None, dict[int, tuple[str, int]]]:
        """The newest unfinished upload of exactly this key and its parts (number → (ETag, size))."""
        answer = self._client.list_multipart_uploads(Bucket=self.settings.bucket, Prefix=full)
        uploads = [u for u in answer.get("Uploads", []) if u["Key"] == full]
        if not uploads:
            return None, {}
        upload_id = str(max(uploads, key=lambda u: u["Initiated"])["UploadId"])
        stored: dict[int, tuple[str, int]] = {}
        paginator = self._client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.settings.bucket, Key=full, UploadId=upload_id):
            for part in page.get("Parts", []):
                stored[int(part["PartNumber"])] = (str(part["ETag"]), int(part["Size"]))
        return upload_id, stored

    def remove_incomplete(self, started_before: datetime) -> int:
        removed = 0
        try:
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=self._prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < started_before:
                        self._client.abort_multipart_upload(
                            Bucket=self.settings.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, "removing incomplete uploads") from None
        return removed

    def _exists(self, full: str) -> bool:
        try:
            self._client.head_object(Bucket=self.settings.bucket, Key=full)
            return True
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code", "")) in _MISSING:
                return False
            raise

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        arguments: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": self._key(key)}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            arguments["Range"] = f"bytes={offset}-{end}"
        try:
            body = self._client.get_object(**arguments)["Body"]
            data: bytes = body.read()
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, f"loading {key}") from None
        if length is not None and len(data) != length:
            raise StorageUnavailable(f"{self.describe()}: short read of {key} ({len(data)} of {length} bytes)")
        return data

    def stat(self, key: str) -> ObjectInfo:
        try:
            head = self._client.head_object(Bucket=self.settings.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from None
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.settings.bucket, Prefix=self._prefix + prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(self._prefix) :], int(item["Size"]), item["LastModified"])
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, f"listing {prefix}") from None

    def remove(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.settings.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as err:
            translated = self._translate(err, f"removing {key}")
            if not isinstance(translated, ObjectNotFound):
                raise translated from None


def _md5(data: Payload) -> Any:
    """The MD5 S3 checks the body against, read a part at a time from a SpooledObject."""
    digest = hashlib.md5(usedforsecurity=False)
    for part in payload_parts(data, _MD5_PART):
        digest.update(part)
    return digest
