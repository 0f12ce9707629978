"""The index: where each blob is (pack, offset, length), held in memory, saved as files.

Index file plaintext: b"LBI1" || u32 pack count || pack ids (32 bytes each) || u32 entry
count || entries (type u8, blob id 32, pack number u32, offset u32, length u32, raw length
u32); compressed with zstd, sealed with AAD b"lifeboat index v1", stored under
`index/<BLAKE3 of the stored bytes>`. Many index files may exist; their union is the index.

In memory an entry from a loaded file is one 46-byte record (the blob id's last 30 bytes,
the pack number shifted left by one with the type in bit 0, offset, length, raw length)
in a bytearray bucket chosen by the id's first two bytes, allocated at its size when files
are loaded: about 63 bytes a blob in the resident set at a million blobs, 48 at ten
million. Entries added one at a time (a backup's new blobs) go to an `_AddedTable`
instead: grown a record at a time, the buckets cost 86 bytes a blob (each realloc left
the old copy free between live ones), the table 56.
A dict of id → location objects costs some 300 bytes a blob, 3 GB at ten million blobs,
and no library offers a compact bytes → struct map, so it is written here. A lookup is
one `bytearray.find` of the id's tail in its bucket, at C speed: ids are uniformly random,
so a bucket holds count/65536 records; then, for an id not found there, a probe of the
added entries' table.
"""

from __future__ import annotations

import struct
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import NamedTuple

import zstandard

from controller.repository.blobs import BlobType
from controller.repository.crypto import MasterKey

INDEX_AAD = b"lifeboat index v1"
_MAGIC = b"LBI1"
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<B32sIIII")
_RECORD = struct.Struct("<30sIIII")  # in memory: the id's tail first, so a match's position is a record's start
_PREFIX = 2  # bytes of the id that choose the bucket
_KIND = struct.Struct("<30xI12x")  # a record's pack number and type alone
_BUCKET_NUMBER = struct.Struct("=H")  # a bucket's two id bytes read as one number, in memory order
_RECORD_SIZE = _RECORD.size
_ADDED = struct.Struct("<32sIIII")  # an added entry: the whole id, then as in _RECORD
_SLOT_HASH = struct.Struct("<2xI")  # four of an id's bytes choose its slot (ids are uniformly random)
_FIRST_SLOTS = 1024
_CHUNK_BITS = 14  # 16,384 records (768 KiB) a chunk of added entries
_CHUNK_MASK = (1 << _CHUNK_BITS) - 1


_TYPES = (BlobType.DATA, BlobType.TREE)  # by value: indexing a tuple costs less than calling the enum


class IndexDamaged(Exception):
    """An index file is unreadable."""


class BlobLocation(NamedTuple):
    """A tuple: made for every lookup, and a frozen dataclass costs four times as much to make."""

    type: BlobType
    pack: bytes  # pack id, 32 bytes
    offset: int
    length: int
    raw_length: int


class Index:
    """Thread-safe map of blob id → location; the first location seen wins."""

    def __init__(self) -> None:
        self._buckets: dict[bytes, bytearray] = {}
        self._added = _AddedTable()
        self._packs: list[bytes] = []
        self._pack_numbers: dict[bytes, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    def __contains__(self, blob_id: bytes) -> bool:
        return self._find(blob_id) >= 0 or self._added.find(blob_id) > 0

    def __len__(self) -> int:
        return self._count

    def get(self, blob_id: bytes) -> BlobLocation | None:
        position = self._find(blob_id)
        if position >= 0:
            _, kind, offset, length, raw_length = _RECORD.unpack_from(self._buckets[blob_id[:_PREFIX]], position)
        else:
            number = self._added.find(blob_id)
            if not number:
                return None
            _, kind, offset, length, raw_length = self._added.record(number)
        return BlobLocation(_TYPES[kind & 1], self._packs[kind >> 1], offset, length, raw_length)

    def add(self, blob_id: bytes, location: BlobLocation) -> None:
        with self._lock:
            if blob_id not in self:
                kind = self._pack_number(location.pack) << 1 | location.type
                self._added.append(blob_id, kind, location.offset, location.length, location.raw_length)
                self._count += 1

    def add_file(self, master: MasterKey, stored: bytes) -> None:
        """Merge a stored index file: all of it or, when it is damaged (IndexDamaged), nothing."""
        damaged = self.add_files(master, [""], lambda _: stored)
        if damaged:
            raise damaged[""]

    def add_files(
        self, master: MasterKey, keys: Sequence[str], load: Callable[[str], bytes]
    ) -> dict[str, IndexDamaged]:
        """Merge the stored index files `load` gives for `keys`, each whole or not at all;
        the damaged ones by key (`load` raises IndexDamaged for one it cannot get).

        Every file is read twice: first to count the records each bucket gets, so that a
        bucket is allocated once at its final size, then to fill the buckets. Grown a
        record at a time, each bucket left its previous copy free in the heap, pinned
        between live ones: 111 bytes a blob in the resident set at a million blobs, not 63.
        Rows go in as records, with no location object made per blob."""
        damaged: dict[str, IndexDamaged] = {}
        counts: Counter[int] = Counter()
        for key in keys:
            try:
                counts.update(_bucket_numbers(_open_index_file(master, partial(load, key), check_rows=False)[1]))
            except IndexDamaged as err:
                damaged[key] = err
        with self._lock:
            ends = self._reserve({_BUCKET_NUMBER.pack(number): count for number, count in counts.items()})
            try:
                for key in keys:
                    if key not in damaged:
                        try:
                            self._fill(*_open_index_file(master, partial(load, key)), ends)
                        except IndexDamaged as err:  # it was readable a moment ago
                            damaged[key] = err
            finally:  # also when a read fails: reserved room never passes for records
                for prefix, end in ends.items():
                    del self._buckets[prefix][end:]  # what duplicates and damage left unused
        return damaged

    def _reserve(self, counts: dict[bytes, int]) -> dict[bytes, int]:
        """Grow the buckets by `counts` records at once; where each one's records end now."""
        ends = {}
        for prefix, count in counts.items():
            bucket = self._buckets.get(prefix) or bytearray()
            ends[prefix] = len(bucket)
            grown = bytearray(len(bucket) + count * _RECORD.size)
            grown[: len(bucket)] = bucket
            self._buckets[prefix] = grown
        return ends

    def _fill(self, packs: list[bytes], rows: memoryview, ends: dict[bytes, int]) -> None:
        """Write the rows' records after each bucket's `ends` (the hot loop of a load: names
        are bound locally)."""
        numbers = [self._pack_number(pack) for pack in packs]
        buckets, pack_into, size, added = self._buckets, _RECORD.pack_into, _RECORD.size, 0
        find_added = self._added.find if self._added.count else None  # an entry added before wins
        for kind, blob_id, number, offset, length, raw_length in _ENTRY.iter_unpack(rows):
            prefix, tail = blob_id[:_PREFIX], blob_id[_PREFIX:]
            bucket, end = buckets[prefix], ends[prefix]
            if _position(bucket, tail, end) < 0 and (find_added is None or not find_added(blob_id)):
                pack_into(bucket, end, tail, numbers[number] << 1 | kind, offset, length, raw_length)
                ends[prefix] = end + size
                added += 1
        self._count += added

    def items(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """Every entry, one bucket copied at a time (safe while others add)."""
        packs = self._packs
        for prefix, bucket in list(self._buckets.items()):
            for tail, kind, offset, length, raw_length in _RECORD.iter_unpack(bytes(bucket)):
                yield prefix + tail, BlobLocation(_TYPES[kind & 1], packs[kind >> 1], offset, length, raw_length)
        for blob_id, kind, offset, length, raw_length in self._added.records():
            yield blob_id, BlobLocation(_TYPES[kind & 1], packs[kind >> 1], offset, length, raw_length)

    def pack_counts(self) -> dict[bytes, int]:
        """How many entries each pack has (read from the records: no object per entry)."""
        counts = [0] * len(self._packs)
        for bucket in list(self._buckets.values()):
            for (kind,) in _KIND.iter_unpack(bytes(bucket)):
                counts[kind >> 1] += 1
        for _, kind, _, _, _ in self._added.records():
            counts[kind >> 1] += 1
        return dict(zip(self._packs, counts, strict=False))

    def packs(self) -> set[bytes]:
        """Every pack some entry names (entries are never removed, so every pack ever added)."""
        return set(self._packs)

    def _pack_number(self, pack: bytes) -> int:
        number = self._pack_numbers.get(pack)
        if number is None:
            number = self._pack_numbers[pack] = len(self._packs)
            self._packs.append(pack)
        return number

    def _find(self, blob_id: bytes) -> int:
        """The record's position in its bucket (entries from files), or -1."""
        bucket = self._buckets.get(blob_id[:_PREFIX])
        return -1 if bucket is None else _position(bucket, blob_id[_PREFIX:], len(bucket))


def _position(bucket: bytearray, tail: bytes, end: int) -> int:
    """Where the record of the id ending in `tail` starts in bucket[:end], or -1. A match
    not at a record's start (the tail spanning two records' bytes) is skipped."""
    position = bucket.find(tail, 0, end)
    while position > 0 and position % _RECORD_SIZE:
        position = bucket.find(tail, position + 1, end)
    return position


class _AddedTable:
    """The entries added one at a time: records with the whole id, in order, in chunks of
    2 ** `_CHUNK_BITS` records allocated whole, found through an open-addressing table of
    their numbers (u32, 0 for an empty slot), kept at most half full. One bytearray grown
    by appending was over-allocated by an eighth, and each realloc that copied it left the
    old buffer free in the heap. Not locked: the Index adds under its lock, and a lookup
    racing an add sees the entry or not (a record is written before its slot)."""

    def __init__(self) -> None:
        self._chunks: list[bytearray] = []
        self.count = 0
        self._slots = array("I", bytes(4 * _FIRST_SLOTS))

    def find(self, blob_id: bytes) -> int:
        """The entry's number (from 1), or 0."""
        slots, chunks = self._slots, self._chunks  # one table throughout, even if it is replaced meanwhile
        mask = len(slots) - 1
        slot: int = _SLOT_HASH.unpack_from(blob_id)[0] & mask
        while number := slots[slot]:
            chunk, position = _chunk_position(number)
            if chunks[chunk].startswith(blob_id, position):
                return number
            slot = (slot + 1) & mask
        return 0

    def record(self, number: int) -> tuple[bytes, int, int, int, int]:
        """Entry `number`: (blob id, pack number << 1 | type, offset, length, raw length)."""
        chunk, position = _chunk_position(number)
        return _ADDED.unpack_from(self._chunks[chunk], position)

    def records(self) -> Iterator[tuple[bytes, int, int, int, int]]:
        """Every entry, in order, one chunk copied at a time (safe while others add)."""
        count = self.count
        for number, chunk in enumerate(list(self._chunks)):
            used = min(count - (number << _CHUNK_BITS), 1 << _CHUNK_BITS) * _ADDED.size
            yield from _ADDED.iter_unpack(chunk[:used])

    def append(self, blob_id: bytes, kind: int, offset: int, length: int, raw_length: int) -> None:
        """Add an entry the table does not hold."""
        if 2 * (self.count + 1) > len(self._slots):
            self._slots = self._placed(2 * len(self._slots))
        chunk, position = _chunk_position(self.count + 1)
        if chunk == len(self._chunks):
            self._chunks.append(bytearray(_ADDED.size << _CHUNK_BITS))
        _ADDED.pack_into(self._chunks[chunk], position, blob_id, kind, offset, length, raw_length)
        self.count += 1
        _place(self._slots, blob_id, self.count)

    def _placed(self, size: int) -> array[int]:
        """A table of `size` slots holding every record (built whole before it is used)."""
        slots = array("I", bytes(4 * size))
        for number in range(1, self.count + 1):
            chunk, position = _chunk_position(number)
            _place(slots, self._chunks[chunk][position : position + _SLOT_HASH.size], number)
        return slots


def _chunk_position(number: int) -> tuple[int, int]:
    """Which chunk holds entry `number` (from 1), and where in it."""
    return (number - 1) >> _CHUNK_BITS, ((number - 1) & _CHUNK_MASK) * _ADDED.size


def _place(slots: array[int], blob_id: bytes | bytearray, number: int) -> None:
    """Put `number` in the first free slot from the one the id chooses."""
    mask = len(slots) - 1
    slot: int = _SLOT_HASH.unpack_from(blob_id)[0] & mask
    while slots[slot]:
        slot = (slot + 1) & mask
    slots[slot] = number


class IndexRows:
    """Entries on their way to an index file, held as the file's own rows (49 bytes each,
    not an object per entry: a backup of many small files holds tens of thousands)."""

    def __init__(self) -> None:
        self._pack_numbers: dict[bytes, int] = {}
        self._rows = bytearray()

    def __len__(self) -> int:
        return len(self._rows) // _ENTRY.size

    def add(self, blob_id: bytes, location: BlobLocation) -> None:
        number = self._pack_numbers.setdefault(location.pack, len(self._pack_numbers))
        self._rows += _ENTRY.pack(location.type, blob_id, number, location.offset, location.length, location.raw_length)

    def encode(self, master: MasterKey) -> bytes:
        """The stored index file."""
        body = b"".join(
            [_MAGIC, _COUNT.pack(len(self._pack_numbers)), *self._pack_numbers, _COUNT.pack(len(self)), self._rows]
        )
        return master.seal(zstandard.ZstdCompressor(level=3).compress(body), INDEX_AAD)


def encode_index(master: MasterKey, entries: Iterable[tuple[bytes, BlobLocation]]) -> bytes:
    rows = IndexRows()
    for blob_id, location in entries:
        rows.add(blob_id, location)
    return rows.encode(master)


def decode_index(master: MasterKey, stored: bytes) -> list[tuple[bytes, BlobLocation]]:
    packs, rows = _open_index_file(master, lambda: stored)
    return [
        (blob_id, BlobLocation(BlobType(kind), packs[number], offset, length, raw_length))
        for kind, blob_id, number, offset, length, raw_length in _ENTRY.iter_unpack(rows)
    ]


def _bucket_numbers(rows: memoryview) -> memoryview:
    """Each row's bucket (its id's first two bytes) as one native 16-bit number, gathered by
    slicing: counted at C speed, where a tuple per row made counting a third of a load."""
    pairs = bytearray(2 * (len(rows) // _ENTRY.size))
    pairs[0::2], pairs[1::2] = rows[1 :: _ENTRY.size].tobytes(), rows[2 :: _ENTRY.size].tobytes()
    return memoryview(pairs).cast("H")


def _open_index_file(
    master: MasterKey, load: Callable[[], bytes], check_rows: bool = True
) -> tuple[list[bytes], memoryview]:
    """The pack ids and the rows (type, blob id, pack number, offset, length, raw length),
    every row checked before any is used unless `check_rows` is off (counting them needs
    their ids alone). Raises IndexDamaged. The file is asked of `load`
    here, so that each form of it is freed as soon as the next is made: three copies of a
    10 MB file at once were a third of the index's own size at a million blobs."""
    sealed = load()
    try:
        compressed = master.open(sealed, INDEX_AAD)
        del sealed
        body = zstandard.ZstdDecompressor().decompress(compressed)
        del compressed
    except Exception as err:  # authentication and zstd errors both mean "damaged"
        raise IndexDamaged(f"index unreadable: {err.__class__.__name__}") from None
    if body[:4] != _MAGIC:
        raise IndexDamaged("not an index (bad magic)")
    try:
        (pack_count,) = _COUNT.unpack_from(body, 4)
        position = 8 + 32 * pack_count
        packs = [body[8 + 32 * i : 8 + 32 * (i + 1)] for i in range(pack_count)]
        (entry_count,) = _COUNT.unpack_from(body, position)
    except struct.error as err:
        raise IndexDamaged(f"index unreadable: {err.__class__.__name__}") from None
    rows = memoryview(body)[position + 4 :]
    if len(rows) != entry_count * _ENTRY.size:
        raise IndexDamaged("index unreadable: the entries do not match their count")
    if check_rows and any(kind > 1 or number >= pack_count for kind, _, number, _, _, _ in _ENTRY.iter_unpack(rows)):
        raise IndexDamaged("index unreadable: an entry is out of range")
    return packs, rows
