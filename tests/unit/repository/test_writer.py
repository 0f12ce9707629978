"""BlobWriter: how blobs are grouped into packs."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.repository import writer
from controller.repository.blobs import BlobType
from controller.repository.pack import read_header
from controller.repository.restorer import Restorer
from controller.storage.memory import MemoryStorage
from tests.support.repository import backup, random_bytes, small_repository, tree_state, write_tree


def test_tree_packs_close_at_their_own_smaller_size_and_never_hold_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tree packs close at their own size (a job on a cold cache copies a whole tree pack
    to read one tree of it), data packs at the pack size, and no pack mixes the two."""
    monkeypatch.setattr(writer, "TREE_PACK_SIZE", 8 * 1024)
    mail = {f"user{u}/cur/{random_bytes(n, 12).hex()}.mail": random_bytes(n, 300) for u in range(40) for n in range(25)}
    files = {**mail, "disk.img": random_bytes(7, 600_000)}
    write_tree(tmp_path / "source", files)
    storage = MemoryStorage()
    repository = small_repository(storage, pack_size=128 * 1024)
    backup(repository, tmp_path / "source")

    sizes: dict[BlobType, list[int]] = {BlobType.DATA: [], BlobType.TREE: []}
    for info in storage.list("data/"):
        entries = read_header(repository.master, storage.load(info.key))
        assert len({entry.type for entry in entries}) == 1, "a pack holds one type of blob"
        before_last = sum(entry.length for entry in entries[:-1])
        sizes[entries[0].type].append(before_last)
    assert len(sizes[BlobType.TREE]) >= 3
    assert max(sizes[BlobType.TREE]) < 8 * 1024  # closed by the blob that reached the tree size
    assert max(sizes[BlobType.DATA]) >= 8 * 1024  # data packs still fill to the pack size
    assert max(sizes[BlobType.DATA]) < 128 * 1024
    Restorer(repository).restore(repository.snapshots()[-1].snapshot, tmp_path / "out")
    assert tree_state(tmp_path / "out") == tree_state(tmp_path / "source")
