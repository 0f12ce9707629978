"""Blob sealing: compress (kept raw when not smaller), then encrypt with the id as AAD.

Sealed form: nonce(12) || AES-256-GCM( flag(1) || payload ) || tag(16), where flag 0 means
payload is the plaintext and flag 1 means payload is one zstd frame. Opening verifies the
tag and that the keyed BLAKE3 of the plaintext equals the id, so a blob can neither be
altered nor swapped for another one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from enum import IntEnum

import zstandard

from controller.repository.crypto import AuthenticationFailed, MasterKey

_RAW, _ZSTD = 0, 1
_local = threading.local()


class BlobType(IntEnum):
    DATA = 0  # a chunk of file or stream content
    TREE = 1  # an encoded directory listing


class BlobDamaged(Exception):
    """A blob failed authentication, decompression or its id check."""


def _compressor(level: int) -> zstandard.ZstdCompressor:
    compressors: dict[int, zstandard.ZstdCompressor] = getattr(_local, "compressors", None) or {}
    _local.compressors = compressors
    if level not in compressors:
        compressors[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return compressors[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if found is None:
        found = zstandard.ZstdDecompressor()
        _local.decompressor = found
    return found


def frame_blob(plaintext: bytes | memoryview, level: int) -> bytes:
    """What is sealed, with the blob id as AAD: `level` 0 stores raw; otherwise zstd at
    that level, raw when that is not smaller. The raw frame is only made when it is used:
    copying every chunk into it before compressing was a sixth of an app backup's sealing time."""
    if level > 0 and plaintext:
        return _smaller_frame(plaintext, _compressor(level).compress(plaintext))
    return b"\x00" + plaintext


def _smaller_frame(plaintext: bytes | memoryview, compressed: bytes) -> bytes:
    """The compressed frame when it is smaller than the plaintext, else the raw one."""
    return b"\x01" + compressed if len(compressed) < len(plaintext) else b"\x00" + plaintext


def frame_blobs(plaintexts: Sequence[bytes], level: int) -> list[bytes]:
    """`frame_blob` of each of `plaintexts` (none empty, `level` above 0), compressed in
    one call that releases the GIL once (zstd's multi_compress_to_buffer, the same frames
    as one at a time): the scanner frames a directory's small files in its own thread,
    off the walk's."""
    if not plaintexts:
        return []
    compressed = _compressor(level).multi_compress_to_buffer(list(plaintexts), threads=1)
    frames = [compressed[i] for i in range(len(compressed))]  # a collection, typed without iteration
    return [_smaller_frame(plaintext, frame.tobytes()) for frame, plaintext in zip(frames, plaintexts, strict=True)]


def open_blob(master: MasterKey, blob_id: bytes, sealed: bytes | memoryview) -> bytes:
    try:
        framed = master.open(sealed, blob_id)
    except AuthenticationFailed:
        raise BlobDamaged(f"blob {blob_id.hex()[:16]} failed authentication") from None
    flag, payload = framed[0], framed[1:]
    if flag == _ZSTD:
        try:
            plaintext = _decompressor().decompress(payload)
        except zstandard.ZstdError:
            raise BlobDamaged(f"blob {blob_id.hex()[:16]} does not decompress") from None
    elif flag == _RAW:
        plaintext = payload
    else:
        raise BlobDamaged(f"blob {blob_id.hex()[:16]} has unknown framing {flag}")
    if master.blob_id(plaintext) != blob_id:
        raise BlobDamaged(f"blob {blob_id.hex()[:16]} content does not match its id")
    return plaintext
