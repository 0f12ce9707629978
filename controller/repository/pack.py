"""Packs: many sealed blobs in one object, with an encrypted header at the end.

Layout: blob_1 || ... || blob_n || sealed_header || header_length (u32 little-endian).
The header lists, in order, each blob's type, id, sealed length and plaintext length;
offsets follow from the lengths. Because every pack describes itself, the index can be
rebuilt from the packs alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from controller.repository.blobs import BlobType
from controller.repository.crypto import AuthenticationFailed, MasterKey, content_hasher, sealed_size
from controller.repository.scratch import ScratchFile
from controller.storage.base import SpooledObject

HEADER_AAD = b"lifeboat pack header v1"
_ENTRY = struct.Struct("<B32sII")  # type, id, sealed length, plaintext length
_TRAILER = struct.Struct("<I")
_STAGING = 1024 * 1024  # sealed blobs gather here and go to the pack's file this much at a time


class PackDamaged(Exception):
    """The pack's trailer or header is unreadable."""


@dataclass(frozen=True)
class PackEntry:
    type: BlobType
    id: bytes
    offset: int
    length: int  # sealed bytes in the pack
    raw_length: int  # plaintext bytes


@dataclass(frozen=True)
class FinishedPack:
    id: bytes  # the BLAKE3 of its bytes
    data: SpooledObject  # valid until its builder is closed
    header: bytes  # the entries as the header's records (an object per entry cost 4 MiB at a million files)

    def entries(self) -> Iterator[PackEntry]:
        return _entries(self.header)


class PackBuilder:
    """Seals blobs into a small staging buffer that goes, a megabyte at a time, to an
    unlinked file beside the local cache, hashed on the way: restic's packer fills its
    packs in temporary files too. Held in memory, the open pack of each type and the two
    being stored were half a first backup's peak, and a day's changes to a million small
    files filled the open data pack to 11 MB where 300,000 filled it to 3. Not thread-safe;
    one pack per builder, closed once stored."""

    def __init__(self) -> None:
        self._staging = bytearray()  # made at the first blob: a writer swaps in builders it may never fill
        self._staged = 0
        self._header = bytearray()
        self._hasher = content_hasher()
        self._file: ScratchFile | None = None
        self._written = 0
        self.size = 0

    def add(self, master: MasterKey, type_: BlobType, blob_id: bytes, framed: bytes, raw_length: int) -> int:
        """Seal `framed` (see blobs.frame_blob) with the blob id as AAD at the pack's end;
        the sealed length. Raises StorageError when the pack's file cannot be written."""
        length = sealed_size(len(framed))
        if not self._staging:
            self._staging = bytearray(_STAGING)
        if self._staged + length > len(self._staging):
            self._flush()
        if length > len(self._staging):  # a big blob goes to the file alone
            self._write(master.seal(framed, blob_id))
        else:
            master.seal_into(framed, blob_id, memoryview(self._staging)[self._staged : self._staged + length])
            self._staged += length
        self._header += _ENTRY.pack(type_, blob_id, length, raw_length)
        self.size += length
        return length

    def __len__(self) -> int:
        return len(self._header) // _ENTRY.size

    def finish(self, master: MasterKey) -> FinishedPack:
        """The pack: its bytes end with the sealed header and the trailer."""
        self._flush()
        sealed_header = master.seal(bytes(self._header), HEADER_AAD)
        self._write(sealed_header + _TRAILER.pack(len(sealed_header)))
        self._staging = bytearray()  # no more blobs: the staging buffer is freed while the pack is stored
        assert self._file is not None  # the header was written
        data = SpooledObject(self._file.fileno(), self._written)
        return FinishedPack(bytes.fromhex(self._hasher.hexdigest()), data, bytes(self._header))

    def close(self) -> None:
        """Drop the pack's file (a finished pack's data is unreadable after this)."""
        if self._file is not None:
            self._file.close()

    def _flush(self) -> None:
        if self._staged:
            self._write(memoryview(self._staging)[: self._staged])
            self._staged = 0

    def _write(self, data: bytes | memoryview) -> None:
        if self._file is None:
            self._file = ScratchFile("packs being filled (a few pack sizes)")
        self._file.write(self._written, data)
        self._hasher.update(data)
        self._written += len(data)


def read_header(master: MasterKey, pack: bytes, pack_size: int | None = None) -> list[PackEntry]:
    """Entries of a whole pack's bytes. Raises PackDamaged."""
    size = len(pack) if pack_size is None else pack_size
    if size < _TRAILER.size:
        raise PackDamaged("pack is shorter than its trailer")
    (header_length,) = _TRAILER.unpack(pack[-_TRAILER.size :])
    start = len(pack) - _TRAILER.size - header_length
    if header_length <= 0 or start < 0:
        raise PackDamaged("pack trailer gives an impossible header length")
    try:
        header = master.open(pack[start : len(pack) - _TRAILER.size], HEADER_AAD)
    except AuthenticationFailed:
        raise PackDamaged("pack header failed authentication") from None
    if len(header) % _ENTRY.size:
        raise PackDamaged("pack header has a partial entry")
    entries = list(_entries(header))
    if entries and entries[-1].offset + entries[-1].length > start:
        raise PackDamaged("pack header describes more bytes than the pack holds")
    return entries


def _entries(header: bytes) -> Iterator[PackEntry]:
    """The entries of a header's records; each blob starts where the one before ends."""
    offset = 0
    for type_, blob_id, length, raw_length in _ENTRY.iter_unpack(header):
        yield PackEntry(BlobType(type_), blob_id, offset, length, raw_length)
        offset += length
