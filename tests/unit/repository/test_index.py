"""The index: a compact map that must answer exactly like a dict would."""

from __future__ import annotations

import errno
import os
import random
import threading
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from controller.errors import StorageError
from controller.repository import index as index_module
from controller.repository.blobs import BlobType
from controller.repository.crypto import MasterKey
from controller.repository.index import INDEX_AAD, BlobLocation, Index, IndexDamaged, decode_index, encode_index
from controller.repository.writer import BlobWriter
from controller.storage.memory import MemoryStorage
from tests.support.processes import open_files_under

PACKS = [bytes([n]) * 32 for n in range(3)]


def _location(rng: random.Random) -> BlobLocation:
    return BlobLocation(
        BlobType(rng.randrange(2)), rng.choice(PACKS), rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**32)
    )


def test_it_answers_like_a_dict_with_first_wins() -> None:
    rng = random.Random(7)
    index, expected, seen = Index(), {}, []
    for _ in range(40_000):  # records are held in chunks of 16,384: this spans three, two in the spill file
        # some ids come twice
        repeat = seen and rng.random() < 0.1
        blob_id = rng.choice(seen) if repeat else bytes([rng.randrange(3), 0]) + rng.randbytes(30)
        location = _location(rng)
        index.add(blob_id, location)
        if blob_id not in expected:
            expected[blob_id] = location
            seen.append(blob_id)
    assert len(index) == len(expected)
    assert all(index.get(blob_id) == location for blob_id, location in expected.items())
    assert dict(index.items()) == expected
    assert index.packs() == {location.pack for location in expected.values()}
    assert index.pack_counts() == Counter(location.pack for location in expected.values())
    assert not any(bytes([n, 0]) + rng.randbytes(30) in index for n in range(3) for _ in range(200))
    master, loaded = MasterKey.generate(), Index()  # the same entries from a file
    loaded.add_file(master, encode_index(master, expected.items()))
    assert dict(loaded.items()) == expected and loaded.pack_counts() == index.pack_counts()


def test_ids_that_share_the_bytes_choosing_their_slot_are_told_apart_by_their_whole_id() -> None:
    """The slots keep four of an id's bytes: a lookup must still compare the whole id, in
    memory and in the spill file (the first chunk is there once 16,384 more are added)."""
    rng = random.Random(17)
    shared = rng.randbytes(4)
    twins = [rng.randbytes(2) + shared + rng.randbytes(26) for _ in range(3)]
    index = Index()
    index.add(twins[0], BlobLocation(BlobType.DATA, PACKS[0], 1, 2, 3))
    index.add(twins[1], BlobLocation(BlobType.TREE, PACKS[1], 4, 5, 6))
    for _ in range(17_000):
        index.add(rng.randbytes(32), _location(rng))
    index.add(twins[0], BlobLocation(BlobType.DATA, PACKS[2], 7, 8, 9))  # known: the first stays
    assert index.get(twins[0]) == BlobLocation(BlobType.DATA, PACKS[0], 1, 2, 3)
    assert index.get(twins[1]) == BlobLocation(BlobType.TREE, PACKS[1], 4, 5, 6)
    assert twins[2] not in index and index.get(twins[2]) is None
    assert len(index) == 17_002


def test_loaded_entries_settle_to_eight_bytes_of_slots_and_are_found_beside_later_adds() -> None:
    """A load's slots move to sorted arrays (8 bytes an entry, where open tables took 16 to
    21); ids sharing the four slot bytes are told apart whether settled, in an open table,
    or settled by a later load beside the first."""
    master, rng = MasterKey.generate(), random.Random(23)
    shared = rng.randbytes(4)
    twins = [rng.randbytes(2) + shared + rng.randbytes(26) for _ in range(4)]
    first = [(twins[0], BlobLocation(BlobType.DATA, PACKS[0], 1, 2, 3))]
    first += [(rng.randbytes(32), _location(rng)) for _ in range(60_000)]
    second = [(twins[2], BlobLocation(BlobType.TREE, PACKS[2], 7, 8, 9)), (first[9][0], _location(rng))]

    index = Index()
    tracemalloc.start()
    try:
        index.add_file(master, encode_index(master, first))
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the slots, the chunk being filled (768 KiB) and the pack list; open tables took 1 MiB more
    assert held < 8 * len(first) + 768 * 1024 + 128 * 1024, held
    index.add(twins[1], BlobLocation(BlobType.TREE, PACKS[1], 4, 5, 6))  # an open table
    index.add(first[5][0], _location(rng))  # known, settled: the first stays
    index.add_file(master, encode_index(master, second))

    expected = dict(first)
    expected[twins[1]] = BlobLocation(BlobType.TREE, PACKS[1], 4, 5, 6)
    expected[twins[2]] = BlobLocation(BlobType.TREE, PACKS[2], 7, 8, 9)
    assert len(index) == len(expected)
    assert all(index.get(blob_id) == location for blob_id, location in expected.items())
    assert twins[3] not in index
    assert not any(rng.randbytes(32) in index for _ in range(1000))


def test_a_load_of_many_files_settles_as_it_goes() -> None:
    """A load settled once, at its end: until then every entry it read sat in open tables
    (16 to 21 bytes each; at a million, 21.6 MiB and the peak of the day's backup). Now
    the open tables are settled whenever they hold `_SETTLE_AT` entries (and a quarter as
    many as are settled), so the load's peak above what it keeps is one file's forms and
    those open entries."""
    master, rng = MasterKey.generate(), random.Random(31)
    files = {
        str(n): encode_index(master, [(rng.randbytes(32), _location(rng)) for _ in range(25_000)]) for n in range(12)
    }
    index = Index()
    tracemalloc.start()
    try:
        index.add_files(master, list(files), files.__getitem__)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == 300_000
    assert held < 8 * 300_000 + 1024 * 1024, held  # the settled slots and the chunk being filled
    assert peak - held < 5 * 1024 * 1024, (peak, held)  # settled once at the end: 6.9 MiB


def test_a_load_of_many_small_files_settles_a_number_of_times_that_grows_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A settle copies every settled slot: settled at a fixed step, a load of ten million
    entries in 1,000 files settled 150 times (34 s). The step grows with what is settled,
    so 200 files of 1,000 entries, with a step of 1,000, settle some twenty times."""
    monkeypatch.setattr(index_module, "_SETTLE_AT", 1000)
    settles: list[int] = []
    settle = index_module._EntryTable.settle
    monkeypatch.setattr(index_module._EntryTable, "settle", lambda table: settles.append(table.count) or settle(table))
    master, rng = MasterKey.generate(), random.Random(37)
    files = {
        str(n): encode_index(master, [(rng.randbytes(32), _location(rng)) for _ in range(1000)]) for n in range(200)
    }
    index = Index()
    index.add_files(master, list(files), files.__getitem__)
    assert len(index) == 200_000
    assert 10 < len(settles) <= 30, settles  # at a fixed step, 200
    assert settles[-1] == 200_000


def test_an_index_file_is_merged_whole_or_not_at_all() -> None:
    master, rng = MasterKey.generate(), random.Random(3)
    entries = [(rng.randbytes(32), _location(rng)) for _ in range(100)]
    index = Index()
    index.add(entries[0][0], BlobLocation(BlobType.TREE, PACKS[2], 9, 9, 9))  # seen first: it stays
    index.add_file(master, encode_index(master, entries))
    assert len(index) == 100
    assert index.get(entries[0][0]) == BlobLocation(BlobType.TREE, PACKS[2], 9, 9, 9)
    assert all(index.get(blob_id) == location for blob_id, location in entries[1:])

    empty = Index()
    stored = bytearray(encode_index(master, entries))
    stored[-20] ^= 1
    with pytest.raises(IndexDamaged):
        empty.add_file(master, bytes(stored))
    with pytest.raises(IndexDamaged):
        empty.add_file(MasterKey.generate(), encode_index(master, entries))
    body = bytearray(zstandard.ZstdDecompressor().decompress(master.open(encode_index(master, entries), INDEX_AAD)))
    body[-16] = 200  # the last entry names pack 200 of 3: authentic, yet wrong
    with pytest.raises(IndexDamaged, match="out of range"):
        empty.add_file(master, master.seal(zstandard.ZstdCompressor().compress(bytes(body)), INDEX_AAD))
    assert len(empty) == 0 and list(empty.items()) == []


def _loader_failing_on(stored: dict[str, bytes], name: str, error: Exception) -> Callable[[str], bytes]:
    """A loader of `stored` that raises `error` for `name` (a file gone, a storage down)."""

    def load(key: str) -> bytes:
        if key == name:
            raise error
        return stored[key]

    return load


def test_many_files_merge_each_whole_first_wins_and_damage_leaves_no_trace() -> None:
    """A file damaged, or gone between its listing and its read, adds nothing."""
    master, rng = MasterKey.generate(), random.Random(11)
    ids = [bytes([rng.randrange(2), 0]) + rng.randbytes(30) for _ in range(3000)]  # ids shared among files
    files = {name: [(rng.choice(ids), _location(rng)) for _ in range(900)] for name in ("a", "b", "c", "d")}
    stored = {name: encode_index(master, entries) for name, entries in files.items()}
    stored["b"] = stored["b"][:-1] + bytes([stored["b"][-1] ^ 1])  # damaged
    load = _loader_failing_on(stored, "c", IndexDamaged("gone since the listing"))

    index = Index()
    index.add(files["d"][5][0], BlobLocation(BlobType.TREE, PACKS[2], 9, 9, 9))  # known before: it stays
    damaged = index.add_files(master, ["a", "b", "c", "d"], load)

    assert sorted(damaged) == ["b", "c"] and str(damaged["c"]) == "gone since the listing"
    expected = {files["d"][5][0]: BlobLocation(BlobType.TREE, PACKS[2], 9, 9, 9)}
    for name in ("a", "d"):
        for blob_id, location in files[name]:
            expected.setdefault(blob_id, location)
    assert len(index) == len(expected)
    assert dict(index.items()) == expected  # nothing of b or c
    assert index.pack_counts() == Counter(location.pack for location in expected.values())


def test_a_storage_failure_propagates_and_leaves_the_files_merged_before_it_whole() -> None:
    """A load that fails otherwise than as damage propagates."""
    master, rng = MasterKey.generate(), random.Random(5)
    entries = [(rng.randbytes(32), _location(rng)) for _ in range(500)]
    stored = {"good": encode_index(master, entries[:250]), "flaky": encode_index(master, entries[250:])}
    load = _loader_failing_on(stored, "flaky", OSError("connection reset"))

    index = Index()
    index.add(entries[0][0], entries[0][1])
    with pytest.raises(OSError, match="connection reset"):
        index.add_files(master, ["good", "flaky"], load)
    expected = dict(entries[:250])
    assert dict(index.items()) == expected
    assert index.pack_counts() == Counter(location.pack for location in expected.values())


def test_full_chunks_of_records_leave_memory_for_a_file_beside_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/tmp may be a tmpfs (memory): the records go where the local cache is, in a file no
    one else sees, gone with the index; and every entry is still found, from memory or file."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    rng = random.Random(13)
    entries = {rng.randbytes(32): _location(rng) for _ in range(20_000)}  # a chunk holds 16,384
    index = Index()
    for blob_id, location in entries.items():
        index.add(blob_id, location)
    spilled = open_files_under(tmp_path)
    assert len(spilled) == 1 and spilled[0].endswith(" (deleted)"), spilled
    assert list(tmp_path.iterdir()) == []
    assert all(index.get(blob_id) == location for blob_id, location in entries.items())
    assert dict(index.items()) == entries
    del index
    assert not open_files_under(tmp_path)


@pytest.mark.parametrize("by_file", [False, True], ids=["one-by-one", "loaded-and-settled"])
def test_a_lookup_while_another_thread_adds_finds_everything_added_before_it(by_file: bool) -> None:
    """A table of slots is replaced as it grows, a full chunk of records leaves memory for
    the spill file, and a load settles its slots into sorted arrays: a reader must never see
    a half-built table, a chunk in neither place, or an entry in neither the open table nor
    the settled array (an entry added before the lookup, reported missing)."""
    rng = random.Random(11)
    ids = [rng.randbytes(32) for _ in range(40_000)]
    index, published = Index(), [0]
    location = BlobLocation(BlobType.DATA, PACKS[0], 1, 2, 3)
    master = MasterKey.generate()

    def add_all() -> None:
        if by_file:
            for start in range(0, len(ids), 2000):
                index.add_file(master, encode_index(master, [(b, location) for b in ids[start : start + 2000]]))
                published[0] = start + 2000
            return
        for count, blob_id in enumerate(ids, 1):
            index.add(blob_id, location)
            published[0] = count

    writer = threading.Thread(target=add_all)
    writer.start()
    missed = []
    while writer.is_alive():
        known = published[0]
        missed += [blob_id for blob_id in rng.sample(ids[:known], min(known, 50)) if blob_id not in index]
    writer.join()
    assert missed == []
    assert len(index) == len(ids) and all(blob_id in index for blob_id in ids)
    assert index.pack_counts() == {PACKS[0]: len(ids)}


def test_a_backup_of_many_small_blobs_writes_index_files_of_bounded_size() -> None:
    """Checkpoints come every `checkpoint_entries` entries (after the pack that reaches
    them), not only every few packs: eight packs of small files held 240,000 entries, and
    encoding them all at once was a backup's peak memory."""
    storage, master = MemoryStorage(), MasterKey.generate()
    writer = BlobWriter(storage, master, Index(), pack_size=4096, compression_level=0, checkpoint_entries=100)
    blobs = [random.Random(n).randbytes(200) for n in range(1000)]  # about 18 to a pack
    for blob in blobs:
        writer.add(BlobType.DATA, master.blob_id(blob), blob)
    writer.finish()

    sizes = sorted(len(decode_index(master, storage.load(info.key))) for info in storage.list("index/"))
    assert sum(sizes) == len(blobs)
    assert len(sizes) >= 9  # not one file: 1,000 entries in 56 packs, under 8 packs a checkpoint
    assert all(size < 100 + 20 for size in sizes)  # the bound, overshot by at most one pack


def test_a_full_disk_fails_the_add_that_needed_room_in_one_line_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill file's write fails (fault injection: ENOSPC). The entry that needed the
    room is refused with a StorageError naming the folder and what to do (an OSError would
    pass, in a backup, for the file being read as unreadable); every earlier entry is still
    found, and once there is room again the index goes on."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    rng = random.Random(19)
    entries = {rng.randbytes(32): _location(rng) for _ in range(16_385)}  # the last one starts a second chunk
    ids = list(entries)
    index = Index()
    for blob_id in ids[:-1]:
        index.add(blob_id, entries[blob_id])

    def pwrite_on_a_full_disk(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as full:
        full.setattr(os, "pwrite", pwrite_on_a_full_disk)
        with pytest.raises(StorageError) as refused:
            index.add(ids[-1], entries[ids[-1]])
    assert str(refused.value) == (
        f"the index's records (48 bytes a blob) cannot be kept in {tmp_path}: No space left on device; "
        "free room there or set LIFEBOAT_CACHE_DIR to a folder on a disk with room"
    )
    assert len(index) == 16_384 and ids[-1] not in index
    assert all(index.get(blob_id) == entries[blob_id] for blob_id in ids[:-1])
    index.add(ids[-1], entries[ids[-1]])
    assert dict(index.items()) == entries
