"""PackBuilder: packs filled in an unlinked file beside the local cache, not in memory."""

from __future__ import annotations

import errno
import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from controller.errors import StorageError
from controller.repository.blobs import BlobType, frame_blob, open_blob
from controller.repository.crypto import MasterKey, content_hash
from controller.repository.pack import PackBuilder, read_header
from tests.support.processes import open_files_under


def add(builder: PackBuilder, master: MasterKey, content: bytes) -> bytes:
    blob_id = master.blob_id(content)
    builder.add(master, BlobType.DATA, blob_id, frame_blob(content, 1), len(content))
    return blob_id


def read_back(master: MasterKey, pack: bytes) -> dict[bytes, bytes]:
    return {
        entry.id: open_blob(master, entry.id, pack[entry.offset : entry.offset + entry.length])
        for entry in read_header(master, pack)
    }


def test_a_pack_reads_back_from_its_bytes_and_is_named_by_their_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blobs that fill the staging buffer many times over, and blobs bigger than it,
    land in order; the id is the hash of the bytes stored; the entries are the header's."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    master, builder = MasterKey.generate(), PackBuilder()
    contents = [os.urandom(3000) for _ in range(800)]  # 2.4 MB in staging flushes of 1 MiB
    contents[100:100] = [os.urandom(1_500_000), b"text " * 400_000]  # bigger than the staging buffer
    written = {add(builder, master, content): content for content in contents}
    pack = builder.finish(master)
    stored = pack.data.read()
    assert len(stored) == len(pack.data) and pack.id.hex() == content_hash(stored)
    assert read_back(master, stored) == written
    assert list(pack.entries()) == read_header(master, stored)
    assert [entry.id for entry in pack.entries()] == list(written)
    builder.close()


def test_a_pack_being_filled_is_in_an_unlinked_file_beside_the_local_cache_not_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/tmp may be memory (a tmpfs): the file goes where the local cache is, unseen by any
    listing, and gone once the pack is closed. A 16 MiB pack costs the process the staging
    buffer and the blob being added, not 16 MiB."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    master, builder = MasterKey.generate(), PackBuilder()
    framed = [frame_blob(os.urandom(64 * 1024), 1) for _ in range(8)]  # made before tracing: the pack's own cost
    tracemalloc.start()
    try:
        for number in range(256):  # 16 MiB
            data = framed[number % 8]
            builder.add(master, BlobType.DATA, master.blob_id(data + bytes([number])), data, len(data))
        pack = builder.finish(master)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(pack.data) > 16 * 1024 * 1024
    assert peak < 3 * 1024 * 1024, peak
    files = open_files_under(tmp_path)
    assert len(files) == 1 and files[0].endswith(" (deleted)"), files
    assert list(tmp_path.iterdir()) == []
    builder.close()
    assert open_files_under(tmp_path) == []


def test_a_full_scratch_disk_is_a_storage_error_naming_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError would pass, in a backup, for the file being read as unreadable."""
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    master, builder = MasterKey.generate(), PackBuilder()

    def pwrite_on_a_full_disk(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", pwrite_on_a_full_disk)
    with pytest.raises(StorageError) as refused:
        add(builder, master, os.urandom(2 * 1024 * 1024))
    assert str(refused.value) == (
        f"packs being filled (a few pack sizes) cannot be kept in {tmp_path}: No space left on device; "
        "free room there or set LIFEBOAT_CACHE_DIR to a folder on a disk with room"
    )


def test_a_cache_folder_that_refuses_the_file_leaves_it_to_the_system_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache folder that is read-only or another user's (root ignores modes, so the
    refusal is injected) must not fail a backup that can go on in $TMPDIR."""
    cache, system = tmp_path / "cache", tmp_path / "tmp"
    system.mkdir()
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    made = tempfile.TemporaryFile

    def refused_in_the_cache(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dir") == cache:
            raise PermissionError(errno.EACCES, "Permission denied")
        return made(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refused_in_the_cache)
    master, builder = MasterKey.generate(), PackBuilder()
    content = os.urandom(10_000)
    blob_id = add(builder, master, content)
    pack = builder.finish(master)
    assert read_back(master, pack.data.read()) == {blob_id: content}
    assert [link.endswith(" (deleted)") for link in open_files_under(system)] == [True]
    builder.close()
