"""The directory scanner: what the native scan gives (compared with what Python's own calls
give for the same files) and the order in which the walk receives the listings."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from controller.repository.archiver import Archiver
from controller.repository.blobs import frame_blob
from controller.repository.restorer import Restorer
from controller.repository.scanner import Listing, Scanner, list_directory
from controller.storage.memory import MemoryStorage
from tests.support.repository import backup, random_bytes, small_repository, tree_state, write_tree

_STAT_FIELDS = [name for name in dir(os.lstat(".")) if name.startswith("st_")]


def test_a_listing_gives_what_lstat_and_a_read_give(tmp_path: Path) -> None:
    small = {f"small-{size}": random_bytes(size, size) for size in (0, 1, 4096, 65_536)}
    write_tree(tmp_path, {**small, "large": random_bytes(9, 65_537), "folder/inside": b"x"})
    os.setxattr(tmp_path / "small-1", "user.note", b"kept")
    os.symlink("small-1", tmp_path / "link")
    os.mkfifo(tmp_path / "pipe")
    expected = {name: os.lstat(tmp_path / name) for name in os.listdir(tmp_path)}  # before the scan reads

    listing = list_directory(str(tmp_path), 65_536, 1 << 20)

    assert listing.error is None
    assert [entry.name for entry in listing.entries] == sorted(expected)
    for entry in listing.entries:
        assert entry.info is not None and entry.error == 0
        for field in _STAT_FIELDS:
            assert getattr(entry.info, field) == getattr(expected[entry.name], field), (entry.name, field)
        assert entry.maybe_xattrs == (entry.name == "small-1")
        assert entry.content == small.get(entry.name)  # not the large file, the link, the pipe or the folder


def test_content_is_read_up_to_the_budget_and_the_rest_left_to_the_walk(tmp_path: Path) -> None:
    files = {f"mail-{n}": random_bytes(n, 1000) for n in range(10)}
    write_tree(tmp_path, files)

    read = [e for e in list_directory(str(tmp_path), 65_536, 3500).entries if e.content is not None]
    unread = list_directory(str(tmp_path), 65_536, 0).entries

    assert len(read) == 3
    assert all(entry.content == files[entry.name] for entry in read)
    assert len(unread) == 10 and all(entry.content is None for entry in unread)


def test_a_directory_that_cannot_be_listed_gives_its_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    assert isinstance(list_directory(str(tmp_path / "file"), 0, 0).error, NotADirectoryError)
    missing = list_directory(str(tmp_path / "missing"), 0, 0)
    assert missing.entries == [] and missing.error is not None and missing.error.errno == errno.ENOENT


def test_the_scan_frames_contents_as_the_writer_would(tmp_path: Path) -> None:
    """Compressed in one call a directory (blobs.frame_blobs), each frame must be the one
    frame_blob makes: compressed text, raw random bytes, nothing for an empty file or
    for a content over the limit (several chunks)."""
    files = {"text": b"hello mail\n" * 300, "random": random_bytes(5, 3000), "empty": b"", "over": b"y" * 5000}
    write_tree(tmp_path, files)
    with Scanner(str(tmp_path), frozenset(), 65_536, read_content=True, frame_level=1, frame_limit=4096) as scanner:
        listing = scanner.next(str(tmp_path))
    assert listing.framed == {name: frame_blob(files[name], 1) for name in ("text", "random")}
    assert listing.framed["text"][0] == 1 and listing.framed["random"][0] == 0  # compressed, kept raw


def _walk(scanner: Scanner, listing: Listing, skip: frozenset[str], seen: list[str]) -> None:
    """The archiver's order: a directory, then its subdirectories by name."""
    seen.append(listing.path)
    for _, path in listing.subdirectories(skip):
        _walk(scanner, scanner.next(path), skip, seen)


def test_the_scan_lists_in_the_walks_order_and_leaves_out_what_it_skips(tmp_path: Path) -> None:
    write_tree(tmp_path, dict.fromkeys(["b/x/1", "b/x/y/2", "a/3", "b/skipped/4", "c/5", "6"], b""))
    skip = frozenset({str(tmp_path / "b" / "skipped")})
    seen: list[str] = []
    with Scanner(str(tmp_path), skip, 65_536, read_content=True) as scanner:
        _walk(scanner, scanner.next(str(tmp_path)), skip, seen)
        with pytest.raises(RuntimeError, match="ended before the walk"):
            scanner.next(str(tmp_path / "more"))
    relative = [os.path.relpath(path, tmp_path) for path in seen]
    assert relative == [".", "a", "b", "b/x", "b/x/y", "c"]


def test_the_walk_may_let_go_of_each_entry_as_it_goes(tmp_path: Path) -> None:
    """The archiver drains a listing as it walks it (a folder of 20,000 new files held 7 MiB
    of stat results until the walk left it), taking its subdirectories first: the scan must
    not read a listing's entries once it has handed the listing over."""
    names = [f"d{n:03}/{f:03}" for n in range(30) for f in range(200)]
    write_tree(tmp_path, dict.fromkeys(["top", *names], b""))
    folders: list[str] = []
    with Scanner(str(tmp_path), frozenset(), 0, read_content=False) as scanner:
        root = scanner.next(str(tmp_path))
        subdirectories = [path for _, path in root.subdirectories(frozenset())]
        assert [entry.name for entry in root.drain()] == [f"d{n:03}" for n in range(30)] + ["top"]
        assert root.entries == []
        for path in subdirectories:
            listing = scanner.next(path)
            folders.append(os.path.relpath(path, tmp_path))
            assert len(list(listing.drain())) == 200 and listing.entries == []
    assert folders == [f"d{n:03}" for n in range(30)]


def test_a_walk_out_of_the_scans_order_is_an_error(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/1": b"", "b/2": b""})
    with Scanner(str(tmp_path), frozenset(), 0, read_content=False) as scanner:
        scanner.next(str(tmp_path))
        with pytest.raises(RuntimeError, match="where the walk is at"):
            scanner.next(str(tmp_path / "b"))


def test_leaving_a_walk_early_stops_the_scan(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"d{n:02}/f": b"data" for n in range(40)})  # more than the queue holds
    with Scanner(str(tmp_path), frozenset(), 65_536, read_content=True) as scanner:
        scanner.next(str(tmp_path))
    assert not [thread for thread in threading.enumerate() if thread.name == "scan"]


def test_a_first_backup_stores_the_scans_reads_and_a_later_one_reads_changed_files_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first backup must not read a small file again (the scan read it); a backup with
    a parent lists without content, and reads only what changed."""
    source = tmp_path / "source"
    write_tree(source, {f"mail/{n}": random_bytes(n, 100 + n * 500) for n in range(30)})
    os.setxattr(source / "mail" / "7", "user.flag", b"seen")
    repository = small_repository(MemoryStorage())
    reads: list[str] = []
    read_file = Archiver._read_file

    def counted(self: Archiver, path: str, *args: object) -> list[str]:
        reads.append(os.path.basename(path))
        return read_file(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Archiver, "_read_file", counted)
    first = backup(repository, source)
    (source / "mail" / "3").write_bytes(b"changed")
    second = backup(repository, source, parent=repository.snapshots()[0])

    assert reads == ["3"]
    restored = tmp_path / "restored"
    Restorer(repository).restore(repository.load_snapshot(second.id), restored)
    assert tree_state(restored) == tree_state(source)
    assert first.snapshot.summary.files == second.snapshot.summary.files == 30
