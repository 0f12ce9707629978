"""The index: where each blob is (pack, offset, length), held in memory, saved as files.

Index file plaintext: b"LBI1" || u32 pack count || pack ids (32 bytes each) || u32 entry
count || entries (type u8, blob id 32, pack number u32, offset u32, length u32, raw length
u32); compressed with zstd, sealed with AAD b"lifeboat index v1", stored under
`index/<BLAKE3 of the stored bytes>`. Many index files may exist; their union is the index.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zstandard

from controller.repository.blobs import BlobType
from controller.repository.crypto import MasterKey

INDEX_AAD = b"lifeboat index v1"
_MAGIC = b"LBI1"
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<B32sIIII")


class IndexDamaged(Exception):
    """An index file is unreadable."""


@dataclass(frozen=True)
class BlobLocation:
    type: BlobType
    pack: bytes  # pack id, 32 bytes
    offset: int
    length: int
    raw_length: int


class Index:
    """Thread-safe map of blob id → location; the first location seen wins."""

    def __init__(self) -> None:
        self._entries: dict[bytes, BlobLocation] = {}
        self._lock = threading.Lock()

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, blob_id: bytes) -> BlobLocation | None:
        return self._entries.get(blob_id)

    def add(self, blob_id: bytes, location: BlobLocation) -> None:
        with self._lock:
            self._entries.setdefault(blob_id, location)

    def items(self) -> Iterator[tuple[bytes, BlobLocation]]:
        return iter(list(self._entries.items()))

    def packs(self) -> set[bytes]:
        return {location.pack for location in self._entries.values()}


def encode_index(master: MasterKey, entries: Iterable[tuple[bytes, BlobLocation]]) -> bytes:
    pack_numbers: dict[bytes, int] = {}
    rows = []
    for blob_id, location in entries:
        number = pack_numbers.setdefault(location.pack, len(pack_numbers))
        rows.append(_ENTRY.pack(location.type, blob_id, number, location.offset, location.length, location.raw_length))
    body = b"".join([_MAGIC, _COUNT.pack(len(pack_numbers)), *pack_numbers, _COUNT.pack(len(rows)), *rows])
    return master.seal(zstandard.ZstdCompressor(level=3).compress(body), INDEX_AAD)


def decode_index(master: MasterKey, stored: bytes) -> list[tuple[bytes, BlobLocation]]:
    try:
        body = zstandard.ZstdDecompressor().decompress(master.open(stored, INDEX_AAD))
        if body[:4] != _MAGIC:
            raise IndexDamaged("not an index (bad magic)")
        (pack_count,) = _COUNT.unpack_from(body, 4)
        position = 8
        packs = [body[position + 32 * i : position + 32 * (i + 1)] for i in range(pack_count)]
        position += 32 * pack_count
        (entry_count,) = _COUNT.unpack_from(body, position)
        position += 4
        result = []
        for _ in range(entry_count):
            type_, blob_id, number, offset, length, raw_length = _ENTRY.unpack_from(body, position)
            position += _ENTRY.size
            result.append((blob_id, BlobLocation(BlobType(type_), packs[number], offset, length, raw_length)))
        return result
    except IndexDamaged:
        raise
    except Exception as err:  # authentication, zstd, struct and range errors all mean "damaged"
        raise IndexDamaged(f"index unreadable: {err.__class__.__name__}") from None
