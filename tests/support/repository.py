"""Small repositories for tests: tiny chunks and packs so that a few KiB exercise everything."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

from controller.repository.archiver import Archiver, ArchiveResult, DirectorySource, Source
from controller.repository.records import ChunkerParams
from controller.repository.repository import Repository, SnapshotEntry
from controller.storage.base import Storage

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SMALL_CHUNKS = ChunkerParams(min_size=4 * 1024, avg_size=8 * 1024, max_size=32 * 1024)
PASSPHRASE = b"correct horse battery staple"


def small_repository(storage: Storage, pack_size: int = 64 * 1024) -> Repository:
    return Repository.init(storage, PASSPHRASE, T0, "test-host", "tester", SMALL_CHUNKS, pack_size)


def backup(
    repository: Repository,
    source: Path | list[Source],
    parent: SnapshotEntry | None = None,
    tags: dict[str, str] | None = None,
    when: datetime = T0,
) -> ArchiveResult:
    sources = [DirectorySource("", source)] if isinstance(source, Path) else source
    return Archiver(repository, parent=parent, workers=2).run(sources, tags or {}, "test-host", when.isoformat())


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a restore must reproduce, per relative path (mtimes in ns, except symlinks' atime)."""
    state: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            info = path.lstat()
            relative = path.relative_to(root).as_posix()
            content: object = None
            if path.is_symlink():
                content = os.readlink(path)
            elif path.is_file():
                content = path.read_bytes()
            xattrs = {}
            if not path.is_symlink():
                xattrs = {x: os.getxattr(path, x) for x in os.listxattr(path)}
            state[relative] = (
                info.st_mode,
                info.st_uid,
                info.st_gid,
                info.st_mtime_ns,
                content,
                xattrs,
                info.st_nlink if path.is_file() else 0,
            )
    return state
