"""The index: where each blob is (pack, offset, length), kept out of the heap, saved as files.

Index file plaintext: b"LBI1" || u32 pack count || pack ids (32 bytes each) || u32 entry
count || entries (type u8, blob id 32, pack number u32, offset u32, length u32, raw length
u32); compressed with zstd, sealed with AAD b"lifeboat index v1", stored under
`index/<BLAKE3 of the stored bytes>`. Many index files may exist; their union is the index.

While a job runs, an entry is one 48-byte record (the whole id, the pack number shifted
left by one with the type in bit 0, offset, length, raw length) in chunks of 2 **
`_CHUNK_BITS` records. Only the chunk being filled stays in memory: a full one is written
to an unlinked file beside the local cache (a ScratchFile) and read back with `pread`, so
the page cache holds the records and the process does not. In memory stay u64 slots:
four bytes of the id (their top byte chooses one of 256 tables) above the record's
number. An entry added one at a time (a backup's) goes to an open-addressing table, which
grows alone, by half, once 60 % of its slots are taken, so no growth builds a copy of all
of them at once. The entries a load merges are settled after each file that leaves
`_SETTLE_AT` or more in the open tables, and a quarter as many as are settled, and at
its end: each table's slots move to a sorted array of exactly 8 bytes an entry, searched
by bisection, and the table starts empty again. A lookup compares those four bytes first
and reads a record only when they match, so an absent id (most of a first backup's
lookups) costs no system call and a present one costs one `pread` of 48 bytes.

Why: the records held in memory (46 to 63 bytes a blob) made a backup's or restore's
peak grow by a third from 300,000 to a million files. The open tables cost 16 to 21 bytes
a loaded blob (a million: 21.6 MiB), the settled arrays 8, which kept a restore's peak
within 11 % from 300,000 to a million files. Settled only at the load's end, the open
tables held every loaded entry until then: the peak of a day's backup of a million
files. Settled as the load goes, a load peaks at half the memory (four million entries:
41 against 89 MiB); a million entries load in the same 2.0 s, but ten million in 1,000
files take 30 s against 23 (each of the load's lookups then bisects the settled slots).
A dict of id → location objects costs some 300 bytes a blob, and no library offers a
compact bytes → struct map that spills to disk, so it is written here.
"""

from __future__ import annotations

import bisect
import struct
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import NamedTuple

import zstandard

from controller.repository.blobs import BlobType
from controller.repository.crypto import MasterKey
from controller.repository.scratch import ScratchFile

INDEX_AAD = b"lifeboat index v1"
_MAGIC = b"LBI1"
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<B32sIIII")
_RECORD = struct.Struct("<32sIIII")  # an entry: the whole id, pack number << 1 | type, offset, length, raw length
_KIND = struct.Struct("<32xI12x")  # a record's pack number and type alone
_ID_HASH = struct.Struct("<2xI")  # four of an id's bytes choose its table and slot (ids are uniformly random)
_NUMBER_BITS = 32  # a slot: the id's four bytes, then the record's number (from 1; 0 is an empty slot)
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1
_TABLE_BITS = 8  # 256 tables of slots, chosen by the four bytes' top byte, each grown alone
_TABLE_SHIFT = 32 - _TABLE_BITS
_FIRST_SLOTS = 8
_FULL = 0.6  # a table grows past this share of its slots taken, by half
_SPREAD = 1.15  # a table's share of a known count, with room for chance (1.6 % deviation at a million)
_SETTLE_AT = 1 << 16  # entries a load leaves in the open tables before it settles them (1.4 MiB), at least
_CHUNK_BITS = 14  # 16,384 records (768 KiB) a chunk
_CHUNK_MASK = (1 << _CHUNK_BITS) - 1
_CHUNK_BYTES = _RECORD.size << _CHUNK_BITS


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
        self._entries = _EntryTable()
        self._packs: list[bytes] = []
        self._pack_numbers: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def __contains__(self, blob_id: bytes) -> bool:
        return self._entries.find(blob_id) is not None

    def __len__(self) -> int:
        return self._entries.count

    def get(self, blob_id: bytes) -> BlobLocation | None:
        record = self._entries.find(blob_id)
        if record is None:
            return None
        _, kind, offset, length, raw_length = _RECORD.unpack(record)
        return BlobLocation(_TYPES[kind & 1], self._packs[kind >> 1], offset, length, raw_length)

    def add(self, blob_id: bytes, location: BlobLocation) -> None:
        with self._lock:
            if blob_id not in self:
                kind = self._pack_number(location.pack) << 1 | location.type
                self._entries.append(blob_id, kind, location.offset, location.length, location.raw_length)

    def add_file(self, master: MasterKey, stored: bytes) -> None:
        """Merge a stored index file: all of it or, when it is damaged (IndexDamaged), nothing."""
        damaged = self.add_files(master, [""], lambda _: stored)
        if damaged:
            raise damaged[""]

    def add_files(
        self, master: MasterKey, keys: Sequence[str], load: Callable[[str], bytes]
    ) -> dict[str, IndexDamaged]:
        """Merge the stored index files `load` gives for `keys`, each whole or not at all;
        the damaged ones by key (`load` raises IndexDamaged for one it cannot get). Every
        row of a file is checked before any is merged; rows go in as records, with no
        location object made per blob."""
        damaged: dict[str, IndexDamaged] = {}
        for key in keys:
            try:
                packs, rows = _open_index_file(master, partial(load, key))
            except IndexDamaged as err:
                damaged[key] = err
                continue
            with self._lock:
                self._merge(packs, rows)
                if self._entries.settling_due():
                    self._entries.settle()
        with self._lock:
            self._entries.settle()
        return damaged

    def _merge(self, packs: list[bytes], rows: memoryview) -> None:
        """Add the rows whose ids are not known yet (the hot loop of a load: names are bound
        locally; the slots are grown once, for the whole file)."""
        numbers = [self._pack_number(pack) for pack in packs]
        entries = self._entries
        entries.reserve(len(rows) // _ENTRY.size)
        find, append = entries.find, entries.append
        for kind, blob_id, number, offset, length, raw_length in _ENTRY.iter_unpack(rows):
            if find(blob_id) is None:
                append(blob_id, numbers[number] << 1 | kind, offset, length, raw_length)

    def items(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """Every entry, a chunk of records at a time (safe while others add)."""
        packs = self._packs
        for records in self._entries.chunks():
            for blob_id, kind, offset, length, raw_length in _RECORD.iter_unpack(records):
                yield blob_id, BlobLocation(_TYPES[kind & 1], packs[kind >> 1], offset, length, raw_length)

    def pack_counts(self) -> dict[bytes, int]:
        """How many entries each pack has (read from the records: no object per entry)."""
        counts = [0] * len(self._packs)
        for records in self._entries.chunks():
            for (kind,) in _KIND.iter_unpack(records):
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


class _EntryTable:
    """The records, in order, in chunks of 2 ** `_CHUNK_BITS`, each allocated whole (one
    growing bytearray was over-allocated by an eighth and left freed copies in the heap);
    a full chunk goes to the spill file and its place in `_chunks` becomes None. Found
    through the slots (see the module's docstring). Not locked: the Index appends and
    settles under its lock, and a lookup racing either sees the entry or not (a record is
    written before its slot, a chunk to the file before it leaves memory, a table of slots
    is built whole before it replaces the last, and a lookup reads the open table before
    the settled array, which settling replaces first)."""

    def __init__(self) -> None:
        self._filling = bytearray(_CHUNK_BYTES)  # the last chunk, the one appends go to
        self._chunks: list[bytearray | None] = [self._filling]
        self._spill: ScratchFile | None = None
        self.count = 0
        self._tables = [_empty_table() for _ in range(1 << _TABLE_BITS)]
        self._held = [0] * (1 << _TABLE_BITS)  # entries in each open table
        self._settled = [array("Q") for _ in range(1 << _TABLE_BITS)]  # sorted slots

    def find(self, blob_id: bytes) -> bytes | bytearray | None:
        """The id's record, or None."""
        hashed: int = _ID_HASH.unpack_from(blob_id)[0]
        table = hashed >> _TABLE_SHIFT
        if self._held[table]:  # read first: it drops to 0 only once the table is empty
            slots = self._tables[table]  # one table throughout, even if it is replaced meanwhile
            size = len(slots)
            slot = hashed % size
            while value := slots[slot]:
                if value >> _NUMBER_BITS == hashed:
                    record = self._record(value & _NUMBER_MASK)
                    if record.startswith(blob_id):
                        return record
                slot = slot + 1 if slot + 1 < size else 0
        settled = self._settled[table]
        position = bisect.bisect_left(settled, hashed << _NUMBER_BITS)
        while position < len(settled) and (value := settled[position]) >> _NUMBER_BITS == hashed:
            record = self._record(value & _NUMBER_MASK)
            if record.startswith(blob_id):
                return record
            position += 1
        return None

    def chunks(self) -> Iterator[bytes]:
        """The records, a chunk's bytes at a time, in order (safe while others append)."""
        count, chunks = self.count, list(self._chunks)
        for number, chunk in enumerate(chunks):
            used = min(count - (number << _CHUNK_BITS), 1 << _CHUNK_BITS) * _RECORD.size
            if used <= 0:
                return
            yield bytes(chunk[:used]) if chunk is not None else self._spilled().read(number * _CHUNK_BYTES, used)

    def append(self, blob_id: bytes, kind: int, offset: int, length: int, raw_length: int) -> None:
        """Add an entry the table does not hold."""
        hashed: int = _ID_HASH.unpack_from(blob_id)[0]
        table = hashed >> _TABLE_SHIFT
        if self._held[table] + 1 > _FULL * len(self._tables[table]):
            self._grow(table, self._held[table] + 1)
        chunk, position = _chunk_position(self.count + 1)
        if chunk == len(self._chunks):  # spilled first: a failed write (a full disk) changes nothing
            self._spill_filling()
            self._filling = bytearray(_CHUNK_BYTES)
            self._chunks.append(self._filling)
        _RECORD.pack_into(self._filling, position, blob_id, kind, offset, length, raw_length)
        self.count += 1
        _place(self._tables[table], hashed << _NUMBER_BITS | self.count)
        self._held[table] += 1

    def settling_due(self) -> bool:
        """True once the open tables hold `_SETTLE_AT` entries and a quarter as many as are
        settled: a settle copies every settled slot, so a fixed step would make a load of
        ten million entries settle 150 times (34 s); a growing one settles some 20 times."""
        held = sum(self._held)
        return held >= max(_SETTLE_AT, (self.count - held) // 4)

    def reserve(self, more: int) -> None:
        """Grow the open tables, where needed, to hold their share of `more` entries beside
        theirs (a load merges a file's rows after one growth of each table, not after many)."""
        share = int((sum(self._held) + more) * _SPREAD) >> _TABLE_BITS
        for table, slots in enumerate(self._tables):
            if share > _FULL * len(slots):
                self._grow(table, share)

    def settle(self) -> None:
        """Move every open table's slots into its sorted array, and empty the table: 8 bytes
        an entry, not 16 to 21. One table at a time, so the copies made are a 256th of the
        slots; the settled array replaces the last before the table is emptied (see the
        class's docstring)."""
        for table, slots in enumerate(self._tables):
            if not self._held[table]:
                continue
            self._settled[table] = array("Q", sorted([*self._settled[table], *filter(None, slots)]))
            self._tables[table] = _empty_table()
            self._held[table] = 0

    def _grow(self, table: int, entries: int) -> None:
        """Replace a table by one of at least half as many more slots, enough for `entries`
        at most `_FULL` taken, built whole before it is used. One table at a time: one of
        the whole index's size, built beside the last, was a spike of one and a half times
        its memory."""
        old = self._tables[table]
        slots = array("Q", bytes(8 * max(len(old) * 3 // 2, int(entries / _FULL) + 1)))
        for value in old:
            if value:
                _place(slots, value)
        self._tables[table] = slots

    def _record(self, number: int) -> bytes | bytearray:
        chunk, position = _chunk_position(number)
        records = self._chunks[chunk]
        if records is None:
            return self._spilled().read(chunk * _CHUNK_BYTES + position, _RECORD.size)
        return records[position : position + _RECORD.size]

    def _spill_filling(self) -> None:
        """Write the full last chunk to the file, then let it go from memory."""
        if self._spill is None:
            self._spill = ScratchFile("the index's records (48 bytes a blob)")
        self._spill.write((len(self._chunks) - 1) * _CHUNK_BYTES, self._filling)
        self._chunks[-1] = None

    def _spilled(self) -> ScratchFile:
        assert self._spill is not None  # a chunk leaves memory only once it is in the file
        return self._spill


def _empty_table() -> array[int]:
    return array("Q", bytes(8 * _FIRST_SLOTS))


def _chunk_position(number: int) -> tuple[int, int]:
    """Which chunk holds entry `number` (from 1), and where in it."""
    return (number - 1) >> _CHUNK_BITS, ((number - 1) & _CHUNK_MASK) * _RECORD.size


def _place(slots: array[int], value: int) -> None:
    """Put `value` in the first free slot from the one its id's four bytes choose."""
    size = len(slots)
    slot = (value >> _NUMBER_BITS) % size
    while slots[slot]:
        slot = slot + 1 if slot + 1 < size else 0
    slots[slot] = value


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


def _open_index_file(master: MasterKey, load: Callable[[], bytes]) -> tuple[list[bytes], memoryview]:
    """The pack ids and the rows (type, blob id, pack number, offset, length, raw length),
    every row checked before any is used. Raises IndexDamaged. The file is asked of `load`
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
    if any(kind > 1 or number >= pack_count for kind, _, number, _, _, _ in _ENTRY.iter_unpack(rows)):
        raise IndexDamaged("index unreadable: an entry is out of range")
    return packs, rows
