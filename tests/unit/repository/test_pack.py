"""PackBuilder: one buffer, reused pack after pack."""

from __future__ import annotations

import os

import pytest

from controller.repository.blobs import BlobType, frame_blob, open_blob
from controller.repository.crypto import MasterKey
from controller.repository.pack import PackBuilder, read_header


def fill(builder: PackBuilder, master: MasterKey, contents: list[bytes]) -> dict[bytes, bytes]:
    by_id = {}
    for content in contents:
        blob_id = master.blob_id(content)
        builder.add(master, BlobType.DATA, blob_id, frame_blob(content, 1), len(content))
        by_id[blob_id] = content
    return by_id


def read_back(master: MasterKey, pack: bytes) -> dict[bytes, bytes]:
    return {
        entry.id: open_blob(master, entry.id, pack[entry.offset : entry.offset + entry.length])
        for entry in read_header(master, pack)
    }


def test_a_reused_builder_makes_packs_that_read_back_and_hold_nothing_of_the_last() -> None:
    master, builder = MasterKey.generate(), PackBuilder()
    first = fill(builder, master, [os.urandom(300_000), b"text " * 50_000, os.urandom(10)])
    view, _ = builder.finish(master)
    first_pack = bytes(view)
    view.release()
    builder.reset()
    second = fill(builder, master, [b"small", os.urandom(1000)])  # fits in the buffer the first pack grew
    view, entries = builder.finish(master)
    second_pack = bytes(view)
    assert read_back(master, first_pack) == first
    assert read_back(master, second_pack) == second
    assert [entry.id for entry in entries] == list(second)
    assert len(second_pack) < 2000  # the view ends where this pack ends, not where the buffer does


def test_a_pack_still_being_stored_cannot_be_overwritten() -> None:
    master, builder = MasterKey.generate(), PackBuilder()
    fill(builder, master, [os.urandom(100_000)])
    view, _ = builder.finish(master)
    stored = bytes(view)
    with pytest.raises(BufferError):
        builder.reset()
    assert bytes(view) == stored
