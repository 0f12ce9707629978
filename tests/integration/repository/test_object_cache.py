"""The local copy of snapshots, index files and tree packs: fewer requests, never a wrong answer."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from controller.repository import object_cache
from controller.repository.blobs import BlobType
from controller.repository.checker import Checker
from controller.repository.pruner import Pruner
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.repository.writer import pack_key
from controller.storage.local import LocalStorage
from tests.integration.repository.conftest import tamper
from tests.support.repository import PASSPHRASE, T0, backup, random_bytes, small_repository, tree_state, write_tree
from tests.support.storage_wrappers import CountingStorage


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(folder))
    return folder


def _three_backups(tmp_path: Path, storage: LocalStorage, this_host: bool = False) -> Path:
    """Backups made on another host (no local copy of what they store), unless `this_host`."""
    source = tmp_path / "source"
    repository = small_repository(storage)
    if not this_host:
        repository.objects = None
    for day in range(3):
        write_tree(source, {f"day{day}/notes.txt": random_bytes(day, 30_000), "shared/a.bin": random_bytes(9, 50_000)})
        backup(repository, source, when=T0 + timedelta(days=day))
    return source


def _open_and_read_latest(storage: CountingStorage, target: Path) -> list[str]:
    """What a job does on a repository: open it, find the latest snapshot, load the index,
    walk the trees (a restore). Returns the keys it loaded."""
    storage.reset()
    repository = Repository.open(storage, PASSPHRASE)
    latest = repository.latest_snapshot({})
    assert latest is not None
    Restorer(repository).restore(latest.snapshot, target)
    return list(storage.loaded)


def test_a_second_job_reads_snapshots_index_and_trees_from_the_copy(tmp_path: Path, cache_dir: Path) -> None:
    local = LocalStorage(tmp_path / "repo")
    source = _three_backups(tmp_path, local)
    counted = CountingStorage(local)
    first = _open_and_read_latest(counted, tmp_path / "first")
    second = _open_and_read_latest(counted, tmp_path / "second")
    assert tree_state(tmp_path / "second") == tree_state(source)
    assert sum(k.startswith(("snapshots/", "index/")) for k in first) >= 3 + 1
    assert not [k for k in second if k.startswith(("snapshots/", "index/"))]
    tree_packs = {k for k in first if k.startswith("data/")} - {k for k in second if k.startswith("data/")}
    assert tree_packs, "the tree packs read by the first job are not read again"
    assert len(second) < len(first) / 2


def _tree_packs(storage: LocalStorage) -> set[str]:
    index = Repository.open(storage, PASSPHRASE).load_index()
    return {pack_key(location.pack) for _, location in index.items() if location.type == BlobType.TREE}


def test_a_job_after_this_hosts_backup_or_prune_fetches_nothing_they_stored(tmp_path: Path, cache_dir: Path) -> None:
    """A backup and a prune keep a copy of the snapshot, index files and tree packs they
    store, as restic does: the next job on the host reads them here, not from the storage."""
    local = LocalStorage(tmp_path / "repo")
    source = _three_backups(tmp_path, local, this_host=True)
    counted = CountingStorage(local)
    loaded = _open_and_read_latest(counted, tmp_path / "first")
    assert tree_state(tmp_path / "first") == tree_state(source)
    assert any(key.startswith("data/") for key in loaded)  # the files' contents come from the storage
    tree_packs = _tree_packs(local)
    assert [key for key in loaded if key.startswith(("snapshots/", "index/")) or key in tree_packs] == []

    repository = Repository.open(local, PASSPHRASE)
    repository.forget(repository.snapshots()[0].id)
    report = Pruner(repository, now=T0 + timedelta(days=30)).prune()
    assert report.index_files_replaced and report.packs_repacked
    loaded = _open_and_read_latest(counted, tmp_path / "second")
    assert tree_state(tmp_path / "second") == tree_state(source)
    tree_packs = _tree_packs(local)  # the prune repacked some
    assert [key for key in loaded if key.startswith(("snapshots/", "index/")) or key in tree_packs] == []


def test_a_copy_that_does_not_match_its_name_is_never_used(tmp_path: Path, cache_dir: Path) -> None:
    local = LocalStorage(tmp_path / "repo")
    source = _three_backups(tmp_path, local)
    counted = CountingStorage(local)
    _open_and_read_latest(counted, tmp_path / "first")
    copies = [path for path in cache_dir.rglob("*") if path.is_file()]
    assert {path.relative_to(cache_dir).parts[1] for path in copies} == {"snapshots", "index", "data"}
    for path in copies:  # every copy damaged: a flipped byte in the middle
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    loaded = _open_and_read_latest(counted, tmp_path / "second")
    assert tree_state(tmp_path / "second") == tree_state(source)
    assert any(k.startswith("snapshots/") for k in loaded) and any(k.startswith("index/") for k in loaded)
    third = _open_and_read_latest(counted, tmp_path / "third")  # the damaged copies were replaced
    assert not [k for k in third if k.startswith(("snapshots/", "index/"))]


def test_what_the_storage_no_longer_lists_leaves_the_copy(tmp_path: Path, cache_dir: Path) -> None:
    local = LocalStorage(tmp_path / "repo")
    _three_backups(tmp_path, local)
    counted = CountingStorage(local)
    _open_and_read_latest(counted, tmp_path / "first")
    repository = Repository.open(local, PASSPHRASE)
    oldest = repository.snapshots()[0].id
    repository.forget(oldest)
    Pruner(repository, now=T0 + timedelta(days=30)).prune()
    reopened = Repository.open(local, PASSPHRASE)
    reopened.snapshots()
    reopened.load_index()
    copies = {str(p.relative_to(cache_dir / repository.config.id)) for p in cache_dir.rglob("*") if p.is_file()}
    assert f"snapshots/{oldest}" not in copies
    assert {c for c in copies if c.startswith("index/")} <= {i.key for i in local.list("index/")}
    assert {c for c in copies if c.startswith("data/")} <= {i.key for i in local.list("data/")}


def test_check_reads_the_storage_not_the_copy(tmp_path: Path, cache_dir: Path) -> None:
    local = LocalStorage(tmp_path / "repo")
    _three_backups(tmp_path, local)
    Repository.open(local, PASSPHRASE).load_index()  # every index file now has a good copy
    damaged = next(iter(local.list("index/"))).key
    tamper(local, damaged, b"garbage")
    report = Checker(Repository.open(local, PASSPHRASE)).check()
    assert {d.problem for d in report.damage if d.object == damaged} == {"index unreadable: AuthenticationFailed"}


@pytest.mark.parametrize("copies", ["on", "off"])
def test_check_downloads_each_object_once_and_keeps_nothing(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, copies: str
) -> None:
    """The check's own copy goes beside the local copies (the system's temporary folder may
    be memory), or to the temporary folder when they are off; either way it is removed."""
    local = LocalStorage(tmp_path / "repo")
    _three_backups(tmp_path, local)
    temporary = tmp_path / "tmp"
    if copies == "off":
        monkeypatch.setenv("LIFEBOAT_CACHE_DIR", "off")
        temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # missing when on: using it would fail
    counted = CountingStorage(local)
    repository = Repository.open(counted, PASSPHRASE)
    counted.reset()
    report = Checker(repository).check()
    assert report.ok and report.snapshots == 3
    loads = Counter(counted.loaded)
    assert {k for k in loads if k.startswith("index/")} == {i.key for i in local.list("index/")}
    assert sum(k.startswith("data/") for k in loads) >= 1  # the tree packs, read whole
    assert [k for k, n in loads.items() if n > 1] == []  # not an index file twice, nor a GET per tree
    left = [p.name for p in (cache_dir if copies == "on" else temporary).iterdir()]
    assert [name for name in left if name.startswith("lifeboat-check-")] == []


@pytest.mark.parametrize("setting", ["off", "a-file"])
def test_without_a_usable_cache_every_read_goes_to_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", setting if setting == "off" else str(tmp_path / "a-file"))
    local = LocalStorage(tmp_path / "repo")
    source = _three_backups(tmp_path, local)
    counted = CountingStorage(local)
    _open_and_read_latest(counted, tmp_path / "first")
    second = _open_and_read_latest(counted, tmp_path / "second")
    assert tree_state(tmp_path / "second") == tree_state(source)
    assert sum(k.startswith("snapshots/") for k in second) == 3


class _RangeLoggingStorage(CountingStorage):
    """Logs each load's offset and size; flips a byte of the first load that is a whole
    copy part (fault injection: a part that comes back damaged)."""

    def __init__(self, inner: LocalStorage, flip_a_part: bool = False) -> None:
        super().__init__(inner)
        self.ranges: list[tuple[str, int, int]] = []
        self._flip = flip_a_part

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = super().load(key, offset, length)
        self.ranges.append((key, offset, len(data)))
        if self._flip and key.startswith("data/") and length == object_cache._PART:
            self._flip = False
            return bytes([data[0] ^ 1]) + data[1:]
        return data


@pytest.mark.parametrize("damaged", [False, True], ids=["whole", "a-part-damaged"])
def test_a_tree_pack_is_copied_in_bounded_parts_and_kept_only_when_it_matches_its_name(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, damaged: bool
) -> None:
    """A tree pack is never held whole (16 MiB, while the tree LRU is full, was a re-backup's
    peak): it goes to its copy in ranged parts. A part that comes back damaged leaves no
    copy, and the trees are still read right, from the storage."""
    monkeypatch.setattr(object_cache, "_PART", 1024)
    local = LocalStorage(tmp_path / "repo")
    files = {f"mail/{folder}/{n}.eml": random_bytes(n, 200) for folder in range(20) for n in range(30)}
    write_tree(tmp_path / "source", files)
    repository = small_repository(local)
    repository.objects = None  # made on another host: this one has no copy yet
    backup(repository, tmp_path / "source")
    storage = _RangeLoggingStorage(local, flip_a_part=damaged)
    repository = Repository.open(storage, PASSPHRASE)
    storage.ranges.clear()

    Restorer(repository).restore(repository.snapshots()[-1].snapshot, tmp_path / "out")

    assert tree_state(tmp_path / "out") == tree_state(tmp_path / "source")
    tree_packs = {key for key, offset, size in storage.ranges if key.startswith("data/") and size == 1024}
    assert tree_packs, "no tree pack was copied in parts"
    assert max(size for key, _, size in storage.ranges if key in tree_packs) <= 1024
    copies = [path for path in cache_dir.rglob("*") if path.is_file() and path.parent.parent.name == "data"]
    assert copies and all(local.load(f"data/{path.parent.name}/{path.name}") == path.read_bytes() for path in copies)
    first_parts = Counter(key for key, *part in storage.ranges if key in tree_packs and part == [0, 1024])
    assert max(first_parts.values()) == (2 if damaged else 1)  # a damaged copy is dropped, made again by the next read
    assert not list(cache_dir.rglob(".tmp-*"))
