"""One test per *must* of controller/repository/FORMAT.md, named after it."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import BackupCorrupted, RepositoryError, StorageFull
from controller.repository.archiver import Archiver, DirectorySource
from controller.repository.blobs import BlobType, frame_blob
from controller.repository.checker import Checker
from controller.repository.crypto import MasterKey, content_hash
from controller.repository.index import decode_index
from controller.repository.keys import list_keys, remove_key
from controller.repository.pack import read_header
from controller.repository.pruner import Pruner
from controller.repository.records import NodeType
from controller.repository.repository import CONFIG_AAD, Repository
from controller.storage.memory import MemoryStorage
from tests.support.fault_injecting_storage import Fault, FaultInjectingStorage
from tests.support.repository import PASSPHRASE, T0, backup, random_bytes, small_repository, write_tree
from tests.support.storage_wrappers import RecordingStorage


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    write_tree(
        root,
        {
            "media/a.bin": random_bytes(1, 200_000),
            "text/b.txt": b"hello\n" * 20_000,
            "empty": b"",
            "deep/er/c": random_bytes(2, 5000),
        },
    )
    return root


def test_object_names_are_the_hash_of_their_bytes(source: Path) -> None:
    storage = MemoryStorage()
    backup(small_repository(storage), source)
    for prefix in ("data/", "index/", "snapshots/", "keys/"):
        infos = list(storage.list(prefix))
        assert infos, prefix
        for info in infos:
            assert info.key.rsplit("/", 1)[1] == content_hash(storage.load(info.key))
    for info in storage.list("data/"):
        name = info.key.rsplit("/", 1)[1]
        assert info.key == f"data/{name[:2]}/{name}"


def test_commit_order_is_packs_then_index_then_snapshot(tmp_path: Path) -> None:
    source = tmp_path / "big"
    write_tree(source, {f"f{i}": random_bytes(10 + i, 120_000) for i in range(20)})  # many packs: checkpoints
    storage = RecordingStorage(MemoryStorage())
    repository = small_repository(storage, pack_size=32 * 1024)  # type: ignore[arg-type]
    storage.saved.clear()
    backup(repository, source)
    position = {key: i for i, key in enumerate(storage.saved)}
    index_keys = [k for k in storage.saved if k.startswith("index/")]
    assert len(index_keys) > 1, "expected checkpoint index files"
    for key in index_keys:
        for _, location in decode_index(repository.master, storage.load(key)):
            pack = f"data/{location.pack.hex()[:2]}/{location.pack.hex()}"
            assert position[pack] < position[key]
    (snapshot_key,) = [k for k in storage.saved if k.startswith("snapshots/")]
    assert position[snapshot_key] == len(storage.saved) - 1
    assert max(position[k] for k in index_keys) < position[snapshot_key]


@pytest.mark.parametrize("someone_else_writes", [False, True])
def test_a_full_storage_is_given_back_only_when_nobody_used_it(tmp_path: Path, someone_else_writes: bool) -> None:
    source = tmp_path / "big"
    write_tree(source, {f"f{i}": random_bytes(30 + i, 120_000) for i in range(20)})  # many packs: checkpoints
    full = Fault("save", matches=lambda key: key.startswith("data/"), kind="full", skip=12, times=1000)
    storage = FaultInjectingStorage(MemoryStorage(clock=lambda: datetime.now(UTC)), [full])
    repository = small_repository(storage, pack_size=32 * 1024)  # type: ignore[arg-type]
    before = {info.key for info in storage.list("")}
    other = Repository.open(storage, PASSPHRASE)  # type: ignore[arg-type]
    with contextlib.ExitStack() as held:
        if someone_else_writes:  # a backup beside ours may have used our checkpoint index
            held.enter_context(other.locked(False, "backup", lambda: datetime.now(UTC)))
        with pytest.raises(StorageFull, match="no space left") as caught:
            backup(repository, source)
        after = {info.key for info in storage.list("") if not info.key.startswith("locks/")}
    written = after - before
    if someone_else_writes:
        assert any(key.startswith("index/") for key in written), "expected a checkpoint index left for prune"
        assert "were removed" not in str(caught.value)
    else:
        assert written == set() and "object(s) this backup wrote were removed" in str(caught.value)
        full.times = full.fired  # space was freed: the next backup, by the same process, succeeds whole
        backup(repository, source)
        assert Checker(repository).check(read_data_percent=100).ok


def test_the_last_key_cannot_be_removed(source: Path) -> None:
    storage = MemoryStorage()
    small_repository(storage)
    (only,) = list_keys(storage)
    with pytest.raises(RepositoryError, match="last key"):
        remove_key(storage, only.id)
    assert len(list_keys(storage)) == 1


def test_readers_refuse_unknown_versions() -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    config = json.loads(repository.master.open(storage.load("config"), CONFIG_AAD))
    config["version"] = 2
    storage.replace_for_test("config", repository.master.seal(json.dumps(config).encode(), CONFIG_AAD))
    with pytest.raises(RepositoryError, match="format version 2 is not supported"):
        Repository.open(storage, PASSPHRASE)


def test_incompressible_blobs_are_stored_raw() -> None:
    repository = small_repository(MemoryStorage())
    noise = random_bytes(3, 50_000)
    text = b"abc" * 20_000
    noise_id, text_id = repository.master.blob_id(noise), repository.master.blob_id(text)
    sealed_noise = repository.master.seal(frame_blob(noise, 1), noise_id)
    sealed_text = repository.master.seal(frame_blob(text, 1), text_id)
    assert repository.master.open(sealed_noise, noise_id)[0] == 0  # raw flag
    assert len(sealed_noise) == len(noise) + 1 + 12 + 16
    assert repository.master.open(sealed_text, text_id)[0] == 1  # zstd flag
    assert len(sealed_text) < len(text) // 10


def test_blobs_are_verified_on_every_read(source: Path) -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    result = backup(repository, source)
    tree = repository.load_tree(result.snapshot.tree)
    media = next(n for n in tree if n.name == "media")
    assert media.subtree is not None
    blob_id = bytes.fromhex(repository.load_tree(media.subtree)[0].content[0])
    location = repository.locate(blob_id)
    key = f"data/{location.pack.hex()[:2]}/{location.pack.hex()}"
    pack = bytearray(storage.load(key))
    pack[location.offset + 20] ^= 0x01
    storage.replace_for_test(key, bytes(pack))
    fresh = Repository.open(storage, PASSPHRASE)
    with pytest.raises(BackupCorrupted, match="failed authentication"):
        fresh.load_blob(blob_id)
    # A valid sealed blob presented under another id is rejected too (the id is the AAD).
    other = repository.master.blob_id(b"other")
    with pytest.raises(BackupCorrupted):
        fresh.open_sealed(other, repository.master.seal(frame_blob(b"x", 0), blob_id))


def test_packs_describe_themselves(source: Path) -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    backup(repository, source)
    from_headers = set()
    for info in storage.list("data/"):
        pack_id = bytes.fromhex(info.key.rsplit("/", 1)[1])
        for entry in read_header(repository.master, storage.load(info.key)):
            from_headers.add((entry.id, pack_id, entry.offset, entry.length, entry.raw_length, entry.type))
    from_index = {
        (blob_id, loc.pack, loc.offset, loc.length, loc.raw_length, loc.type)
        for blob_id, loc in Repository.open(storage, PASSPHRASE).load_index().items()
    }
    assert from_headers == from_index


def test_a_folders_files_are_read_before_its_subfolders(tmp_path: Path) -> None:
    """A volume's big files (a database, a disk image) sit beside its folders: read last,
    one worker would read them alone at the end of the backup."""
    write_tree(
        tmp_path / "src", {"a-folder/photo.jpg": random_bytes(1, 200_000), "z-disk.img": random_bytes(2, 200_000)}
    )
    storage = RecordingStorage(MemoryStorage())
    repository = small_repository(storage)  # type: ignore[arg-type]
    result = Archiver(repository, workers=1).run([DirectorySource("", tmp_path / "src")], {}, "h", T0.isoformat())
    root = {node.name: node for node in repository.load_tree(result.snapshot.tree)}
    disk_chunks = set(root["z-disk.img"].content)
    first_pack = next(key for key in storage.saved if key.startswith("data/"))
    first_blob = read_header(repository.master, storage.load(first_pack))[0]
    assert first_blob.id.hex() in disk_chunks


def test_index_entries_point_into_stored_packs(source: Path) -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    backup(repository, source)
    packs = {info.key for info in storage.list("data/")}
    for info in storage.list("index/"):
        for _, location in decode_index(repository.master, storage.load(info.key)):
            assert f"data/{location.pack.hex()[:2]}/{location.pack.hex()}" in packs


def test_a_snapshot_only_references_indexed_blobs(source: Path) -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    result = backup(repository, source)
    index = Repository.open(storage, PASSPHRASE).load_index()
    stack = [result.snapshot.tree]
    seen = 0
    while stack:
        tree_id = stack.pop()
        assert bytes.fromhex(tree_id) in index
        for node in repository.load_tree(tree_id):
            if node.type == NodeType.DIR:
                assert node.subtree is not None
                stack.append(node.subtree)
            for content in node.content:
                assert bytes.fromhex(content) in index
                seen += 1
    assert seen > 10


def test_prune_keeps_young_unreferenced_data(source: Path) -> None:
    storage = MemoryStorage(clock=lambda: T0)
    repository = small_repository(storage)
    result = backup(repository, source)
    repository.forget(result.id)
    young = Pruner(Repository.open(storage, PASSPHRASE), now=T0 + timedelta(minutes=5)).prune()
    assert young.packs_deleted == 0 and list(storage.list("data/"))
    assert young.kept_young_bytes == sum(info.size for info in storage.list("data/"))
    assert young.grace_note().endswith("a prune after 2026-11-20 03:00 UTC frees them")  # T0 + the hour of grace
    old = Pruner(Repository.open(storage, PASSPHRASE), now=T0 + timedelta(hours=2)).prune()
    assert old.packs_deleted > 0 and not list(storage.list("data/"))
    # A pack in no index (an interrupted backup) is kept while young as well.
    repository = Repository.open(storage, PASSPHRASE)
    writer = repository.blob_writer()
    writer.add(BlobType.DATA, repository.master.blob_id(b"orphan"), b"orphan")
    writer.flush()
    writer.close()
    assert Pruner(repository, now=T0 + timedelta(minutes=5)).prune().unindexed_deleted == 0
    assert Pruner(repository, now=T0 + timedelta(hours=2)).prune().unindexed_deleted == 1


def test_nonces_are_never_shared_by_threads_or_a_forked_child() -> None:
    """Sealing cuts nonces from a buffer of random bytes: a nonce used twice under one key
    would break AES-GCM, so a child must not reuse what its parent had buffered."""
    master = MasterKey.generate()
    sealed: list[bytes] = []
    lock = threading.Lock()

    def seal_many() -> None:
        nonces = [master.seal(b"x", b"aad")[:12] for _ in range(1000)]
        with lock:
            sealed.extend(nonces)

    master.seal(b"x", b"aad")  # this thread now holds a buffer a child would inherit
    threads = [threading.Thread(target=seal_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child seals and reports its nonces
        os.close(read)
        os.write(write, b"".join(master.seal(b"x", b"aad")[:12] for _ in range(100)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = [master.seal(b"x", b"aad")[:12] for _ in range(100)]
    every = sealed + parent + [child[i : i + 12] for i in range(0, len(child), 12)]
    assert len(every) == 3200 and len(set(every)) == 3200
