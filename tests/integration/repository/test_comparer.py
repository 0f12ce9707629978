"""The comparer on real files: a restored tree equals its snapshot; each kind of difference
a user makes (a byte flipped with the size and time kept, a file added or removed, a mode
or a symlink changed) is named."""

from __future__ import annotations

import os
from pathlib import Path

from controller.repository.comparer import Comparer
from controller.repository.restorer import Restorer
from controller.storage.local import LocalStorage
from tests.support.repository import backup, random_bytes, small_repository, write_tree


def test_a_restored_tree_equals_its_snapshot_and_every_change_is_named(tmp_path: Path) -> None:
    repository = small_repository(LocalStorage(tmp_path / "repo"))
    source = tmp_path / "source"
    write_tree(
        source,
        {"readme.txt": b"original\n", "empty": b"", "big.bin": random_bytes(3, 300_000), "sub/deep/a.txt": b"a"},
    )
    (source / "link").symlink_to("readme.txt")
    snapshot = backup(repository, source).snapshot
    restored = tmp_path / "restored"
    Restorer(repository).restore(snapshot, restored)

    same = Comparer(repository).compare(snapshot, "", restored)
    assert same.is_empty(), same.describe()
    assert same.files == 4 and same.bytes == 300_000 + 9 + 1

    big = restored / "big.bin"
    times = (big.stat().st_atime_ns, big.stat().st_mtime_ns)
    data = bytearray(big.read_bytes())
    data[150_000] ^= 1
    big.write_bytes(bytes(data))
    os.utime(big, ns=times)  # same size, same time: only the content tells
    (restored / "extra.txt").write_text("new\n")
    (restored / "sub" / "deep" / "a.txt").unlink()
    os.chmod(restored / "readme.txt", 0o600)
    (restored / "link").unlink()
    (restored / "link").symlink_to("elsewhere")

    diff = Comparer(repository).compare(snapshot, "", restored)
    assert diff.added == ["sub/deep/a.txt"] and diff.deleted == ["extra.txt"]
    assert diff.changed == ["big.bin (content)", "link (target)", "readme.txt (mode 600, not 644)"]
    assert diff.describe() == (
        "1 to add (sub/deep/a.txt), 3 to change (big.bin (content), link (target), readme.txt (mode 600, not 644)), "
        "1 to delete (extra.txt)"
    )
    quick = Comparer(repository, content=False).compare(snapshot, "", restored)
    assert "big.bin (content)" not in quick.changed and quick.files == 0  # metadata only


def test_conflicts_are_the_files_writing_the_snapshot_would_overwrite(tmp_path: Path) -> None:
    repository = small_repository(LocalStorage(tmp_path / "repo"))
    source = tmp_path / "project"
    write_tree(source, {"docker-compose.yml": b"services: {}\n", ".env": b"A=1\n", "conf/site.conf": b"x"})
    snapshot = backup(repository, source).snapshot
    folder = tmp_path / "elsewhere"
    write_tree(folder, {"docker-compose.yml": b"services: {}\n", "conf/site.conf": b"y", "notes.txt": b"mine"})

    # Same content elsewhere is no conflict, nor a missing file (.env) or an extra one (notes.txt).
    assert Comparer(repository).conflicts(snapshot, "", folder) == ["conf/site.conf"]
    (folder / ".env").mkdir()
    assert Comparer(repository).conflicts(snapshot, "", folder) == [".env", "conf/site.conf"]
