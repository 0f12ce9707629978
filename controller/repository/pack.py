"""Packs: many sealed blobs in one object, with an encrypted header at the end.

Layout: blob_1 || ... || blob_n || sealed_header || header_length (u32 little-endian).
The header lists, in order, each blob's type, id, sealed length and plaintext length;
offsets follow from the lengths. Because every pack describes itself, the index can be
rebuilt from the packs alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from controller.repository.blobs import BlobType
from controller.repository.crypto import AuthenticationFailed, MasterKey, sealed_size

HEADER_AAD = b"lifeboat pack header v1"
_ENTRY = struct.Struct("<B32sII")  # type, id, sealed length, plaintext length
_TRAILER = struct.Struct("<I")
_GROWTH = 1024 * 1024


class PackDamaged(Exception):
    """The pack's trailer or header is unreadable."""


@dataclass(frozen=True)
class PackEntry:
    type: BlobType
    id: bytes
    offset: int
    length: int  # sealed bytes in the pack
    raw_length: int  # plaintext bytes


class PackBuilder:
    """Seals blobs straight into one buffer, kept for the next pack after `reset`; not
    thread-safe. A pack used to be joined from its blobs' sealed copies: each of those and
    the joined pack were fresh memory, and the kernel zeroed a page for every 4 KiB of
    them. A reused buffer is paged in once."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._entries: list[PackEntry] = []
        self.size = 0

    def add(self, master: MasterKey, type_: BlobType, blob_id: bytes, framed: bytes, raw_length: int) -> int:
        """Seal `framed` (see blobs.frame_blob) with the blob id as AAD at the pack's end;
        the sealed length."""
        length = sealed_size(len(framed))
        self._entries.append(PackEntry(type_, blob_id, self.size, length, raw_length))
        master.seal_into(framed, blob_id, self._reserve(length))
        return length

    def _reserve(self, length: int) -> memoryview:
        end = self.size + length
        if end > len(self._buffer):  # in steps of 1 MiB or more: not a growth for every small blob
            self._buffer.extend(bytes(max(end - len(self._buffer), _GROWTH)))
        target = memoryview(self._buffer)[self.size : end]
        self.size = end
        return target

    def __len__(self) -> int:
        return len(self._entries)

    def finish(self, master: MasterKey) -> tuple[memoryview, list[PackEntry]]:
        """The pack's bytes, a view of the whole buffer (cut to the pack's end, so that a
        storage may send the buffer itself), valid until `reset`; and its entries."""
        header = b"".join(_ENTRY.pack(e.type, e.id, e.length, e.raw_length) for e in self._entries)
        sealed_header = master.seal(header, HEADER_AAD)
        self._reserve(len(sealed_header))[:] = sealed_header
        self._reserve(_TRAILER.size)[:] = _TRAILER.pack(len(sealed_header))
        del self._buffer[self.size :]  # keeps its memory: the next pack grows it back in place
        return memoryview(self._buffer), self._entries

    def reset(self) -> None:
        """Empty, keeping the buffer. Raises BufferError while a view `finish` gave is alive:
        the next pack must never be sealed into bytes that are still being stored."""
        self._buffer.append(0)  # a bytearray refuses any resize while it is viewed
        del self._buffer[-1]
        self._entries, self.size = [], 0


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
    entries, offset = [], 0
    for position in range(0, len(header), _ENTRY.size):
        type_, blob_id, length, raw_length = _ENTRY.unpack_from(header, position)
        entries.append(PackEntry(BlobType(type_), blob_id, offset, length, raw_length))
        offset += length
    if offset > start:
        raise PackDamaged("pack header describes more bytes than the pack holds")
    return entries
