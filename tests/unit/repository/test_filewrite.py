"""The restore's native batch writer: each file as restorer.py would make it, and a file
whose calls fail is named back, not lost or half-reported (real files, no mocks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.repository._filewrite import write_files

IS_ROOT = os.geteuid() == 0


def _job(
    path: Path, data: bytes, create: bool = True, size: int | None = None, mode: int = 0o640, mtime_ns: int = 0
) -> tuple[bytes, bytes, bool, int, int, int, int, int]:
    return (os.fsencode(path), data, create, len(data) if size is None else size, mode, 1000, 1001, mtime_ns)


def test_files_get_their_content_size_mode_owner_and_times(tmp_path: Path) -> None:
    made, emptied = tmp_path / "made", tmp_path / "emptied"
    emptied.write_bytes(b"")  # as the walk leaves a file that stood in the target
    failed = write_files(
        [
            _job(made, b"mail body\n", mode=0o4750, mtime_ns=1_700_000_000_123_456_789),
            _job(emptied, b"x" * 5000, create=False, mtime_ns=-1_500_000_001),  # before 1970
        ],
        IS_ROOT,
    )
    assert failed == []
    info = made.stat()  # before a read moves the atime
    assert (info.st_mode & 0o7777, info.st_mtime_ns, info.st_atime_ns) == (
        0o4750,
        1_700_000_000_123_456_789,
        1_700_000_000_123_456_789,
    )
    assert emptied.stat().st_mtime_ns == -1_500_000_001
    assert made.read_bytes() == b"mail body\n"
    assert emptied.read_bytes() == b"x" * 5000
    if IS_ROOT:
        assert (info.st_uid, info.st_gid) == (1000, 1001)


def test_zeros_stay_a_hole_and_a_trailing_hole_gives_the_size(tmp_path: Path) -> None:
    zeros, tail = tmp_path / "zeros", tmp_path / "tail"
    assert write_files([_job(zeros, bytes(65536)), _job(tail, b"head", size=1 << 20)], IS_ROOT) == []
    assert zeros.read_bytes() == bytes(65536)
    assert zeros.stat().st_blocks == 0
    assert tail.stat().st_size == 1 << 20
    assert tail.read_bytes()[:4] == b"head"
    assert tail.stat().st_blocks * 512 < 1 << 20


def test_a_file_that_fails_is_named_and_the_others_are_written(tmp_path: Path) -> None:
    """Its directory gone since the walk, or no file to open without O_CREAT: the restorer
    makes it again in Python, which raises with the path."""
    before, after = tmp_path / "before", tmp_path / "after"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    failed = write_files(
        [
            _job(before, b"one"),
            _job(tmp_path / "gone" / "file", b"two"),
            _job(tmp_path / "not-emptied", b"three", create=False),
            _job(link, b"four"),  # never followed
            _job(after, b"five"),
        ],
        IS_ROOT,
    )
    assert failed == [1, 2, 3]
    assert (before.read_bytes(), after.read_bytes()) == (b"one", b"five")
    assert not (tmp_path / "not-emptied").exists()
    assert not (tmp_path / "elsewhere").exists()


def test_a_memoryview_is_written_and_a_bad_item_raises_without_writing(tmp_path: Path) -> None:
    target = tmp_path / "view"
    assert write_files([_job(target, memoryview(b"--payload--")[2:-2])], IS_ROOT) == []  # type: ignore[arg-type]
    assert target.read_bytes() == b"payload"
    with pytest.raises(TypeError):  # a path given as str
        write_files([_job(tmp_path / "first", b"a"), ("not bytes", b"b", True, 1, 0o644, 0, 0, 0)], IS_ROOT)  # type: ignore[list-item]
    assert not (tmp_path / "first").exists()
