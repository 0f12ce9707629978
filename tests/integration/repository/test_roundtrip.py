"""Round trips over generated trees: restore equals source, metadata included; export equals restore."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.repository import restorer
from controller.repository.archiver import DirectorySource, StreamSource
from controller.repository.exporter import export_tar
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.local import LocalStorage
from controller.storage.memory import MemoryStorage
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree
from tests.support.storage_wrappers import RecordingStorage

IS_ROOT = os.geteuid() == 0
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_. é", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)


@dataclass
class Entry:
    kind: str  # file, sparse, dir, symlink, hardlink, fifo, empty
    name: str
    size: int = 0
    seed: int = 0
    mode: int = 0o644
    owner: int = 0
    mtime_ns: int = 1_700_000_000_123_456_789
    xattr: bytes | None = None


_entries = st.builds(
    Entry,
    kind=st.sampled_from(["file", "file", "file", "sparse", "dir", "symlink", "hardlink", "fifo", "empty"]),
    name=_names,
    size=st.sampled_from([0, 1, 100, 4095, 4096, 40_000, 150_000]),
    seed=st.integers(0, 10**6),
    mode=st.sampled_from([0o644, 0o600, 0o755, 0o400, 0o4755, 0o1777 & 0o7777]),
    owner=st.sampled_from([0, 1000, 65534]),
    mtime_ns=st.integers(0, 2_000_000_000_000_000_000),
    xattr=st.one_of(st.none(), st.binary(max_size=40)),
)


def build(root: Path, entries: list[Entry]) -> None:
    """Create entries; directories nest the entries that follow them (a few levels deep)."""
    root.mkdir(parents=True)
    directories, files = [root], []
    for entry in entries:
        parent = directories[entry.seed % len(directories)]
        path = parent / entry.name
        if path.exists() or path.is_symlink():
            continue
        if entry.kind in ("file", "sparse"):
            with path.open("wb") as handle:
                if entry.kind == "sparse":
                    handle.seek(entry.size * 10)  # a hole, then data, then a trailing hole
                handle.write(random_bytes(entry.seed, entry.size))
                if entry.kind == "sparse":
                    handle.truncate(entry.size * 20 + 1)
            files.append(path)
        elif entry.kind in ("dir", "empty"):
            path.mkdir()
            if entry.kind == "dir":
                directories.append(path)
        elif entry.kind == "symlink":
            os.symlink(f"../target-{entry.seed}" if entry.seed % 2 else entry.name + ".missing", path)
        elif entry.kind == "hardlink" and files:
            os.link(files[entry.seed % len(files)], path)
            continue  # metadata is shared with the first name
        elif entry.kind == "fifo":
            os.mkfifo(path)
        else:
            continue
        if entry.xattr is not None and (path.is_file() or path.is_dir()) and not path.is_symlink():
            os.setxattr(path, "user.lifeboat", entry.xattr)
        if IS_ROOT:
            os.chown(path, entry.owner, entry.owner, follow_symlinks=False)
        if not path.is_symlink():
            os.chmod(path, entry.mode if entry.kind != "dir" else 0o755)
    # Times last, children before parents, so directory mtimes are the ones chosen.
    for index, path in enumerate(sorted((p for p in root.rglob("*")), key=lambda p: -len(p.parts))):
        mtime = entries[index % len(entries)].mtime_ns if entries else 0
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(_entries, min_size=1, max_size=25), batch_blobs=st.sampled_from([1, 3, 50_000]))
def test_restore_and_export_equal_the_source(entries: list[Entry], batch_blobs: int) -> None:
    """`batch_blobs`: a restore planned a few files at a time (hard links across batches)
    must give the same tree as one planned at once."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        source = work / "source"
        build(source, entries)
        repository = small_repository(MemoryStorage())
        result = backup(repository, source)
        assert result.problems == []
        restored = work / "restored"
        Restorer(repository, batch_blobs=batch_blobs).restore(repository.load_snapshot(result.id), restored)
        expected = tree_state(source)
        assert tree_state(restored) == expected
        tar_path = work / "export.tar"
        with tar_path.open("wb") as handle:
            export_tar(repository, repository.load_snapshot(result.id), handle)
        untarred = work / "untarred"
        untarred.mkdir()
        subprocess.run(
            [
                "tar",
                "-xf",
                str(tar_path),
                "-C",
                str(untarred),
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "--same-permissions",
            ],
            check=True,
            capture_output=True,
        )
        assert tree_state(untarred) == expected


def test_sparse_zero_runs_stay_sparse(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    with (source / "disk.img").open("wb") as handle:
        handle.seek(50 * 1024 * 1024)
        handle.write(b"end")
    repository = small_repository(MemoryStorage())
    result = backup(repository, source)
    assert result.snapshot.summary.bytes_added < 1024 * 1024  # one zero chunk, stored once
    restored = tmp_path / "restored"
    Restorer(repository).restore(repository.load_snapshot(result.id), restored)
    image = restored / "disk.img"
    assert image.stat().st_size == 50 * 1024 * 1024 + 3
    assert image.stat().st_blocks * 512 < 1024 * 1024  # holes, not written zeros
    assert image.read_bytes()[-3:] == b"end"


def test_sockets_are_skipped_with_a_note(tmp_path: Path) -> None:
    source = tmp_path / "s"
    source.mkdir()
    (source / "keep.txt").write_text("x")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(source / "app.sock"))
    try:
        result = backup(small_repository(MemoryStorage()), source)
    finally:
        server.close()
    assert result.problems == []
    assert result.snapshot.warnings == ["skipped socket app.sock"]


def test_streams_and_directories_in_one_snapshot_with_subpath_restore(tmp_path: Path) -> None:
    source = tmp_path / "uploads"
    source.mkdir()
    (source / "photo.jpg").write_bytes(random_bytes(7, 70_000))
    dump = random_bytes(8, 123_457)
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader:
        writer = os.fdopen(write_end, "wb")
        import threading

        feeder = threading.Thread(target=lambda: (writer.write(dump), writer.close()))
        feeder.start()
        repository = small_repository(LocalStorage(tmp_path / "repo"))
        result = backup(repository, [DirectorySource("volumes/uploads", source), StreamSource("dumps/db.sql", reader)])
        feeder.join()
    snapshot = Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE).load_snapshot(result.id)
    assert snapshot.paths == ["volumes/uploads", "dumps/db.sql"]
    out = tmp_path / "out"
    Restorer(repository).restore(snapshot, out, subpath="dumps/db.sql")
    assert (out / "db.sql").read_bytes() == dump
    Restorer(repository).restore(snapshot, tmp_path / "vol", subpath="volumes/uploads")
    assert (tmp_path / "vol" / "photo.jpg").read_bytes() == (source / "photo.jpg").read_bytes()


def test_restore_with_delete_makes_the_target_identical(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "keep").mkdir(parents=True)
    (source / "keep" / "a").write_text("a")
    repository = small_repository(MemoryStorage())
    snapshot = repository.load_snapshot(backup(repository, source).id)
    target = tmp_path / "target"
    shutil.copytree(source, target)
    (target / "extra.txt").write_text("extra")
    (target / "keep" / "b").write_text("b")
    (target / "keep" / "a").write_text("changed")
    Restorer(repository).restore(snapshot, target)
    assert (target / "extra.txt").exists()  # without --delete, extra files stay
    Restorer(repository, batch_blobs=1).restore(snapshot, target, delete=True)
    assert tree_state(target) == tree_state(source)


def test_a_directory_source_leaves_out_what_it_skips_and_files_over_its_size_limit(tmp_path: Path) -> None:
    repository = small_repository(LocalStorage(tmp_path / "repo"))
    project = tmp_path / "project"
    write_tree(
        project,
        {"compose.yml": b"services: {}\n", "data/db.bin": b"d" * 10, ".git/HEAD": b"ref", "dump.sql": b"x" * 5000},
    )
    source = DirectorySource("app/project", project, frozenset({project / "data", project / ".git"}), 4096)
    result = backup(repository, [source])
    restored = tmp_path / "restored"
    Restorer(repository).restore(result.snapshot, restored, subpath="app/project")
    assert sorted(p.name for p in restored.iterdir()) == ["compose.yml"]
    assert result.problems == []
    assert any("dump.sql (5000 bytes)" in note for note in result.snapshot.warnings)


class _RangeRecordingStorage(RecordingStorage):
    """Remembers the length of every ranged read of a data pack."""

    def __init__(self, inner: LocalStorage) -> None:
        super().__init__(inner)
        self.pack_reads: list[tuple[str, int]] = []

    def load(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = super().load(key, offset, length)
        if key.startswith("data/") and length is not None:
            self.pack_reads.append((key, len(data)))
        return data


def test_a_pack_is_restored_in_bounded_regions_and_no_tree_stays_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regions bound each worker's buffer, and split a pack among workers (a batch of small
    files may need one pack only); a restore walks each tree once, so it keeps none."""
    files = {f"mail/{n:03}.eml": random_bytes(n, 3000 + n * 50) for n in range(120)}
    write_tree(tmp_path / "src", files)
    small_repository(LocalStorage(tmp_path / "repo"), pack_size=1024 * 1024)
    backup(Repository.open(LocalStorage(tmp_path / "repo"), PASSPHRASE), tmp_path / "src")
    monkeypatch.setattr(restorer, "_MAX_REGION", 64 * 1024)
    storage = _RangeRecordingStorage(LocalStorage(tmp_path / "repo"))
    repository = Repository.open(storage, PASSPHRASE)
    snapshot = repository.snapshots()[-1].snapshot

    Restorer(repository).restore(snapshot, tmp_path / "out")

    assert {name: (tmp_path / "out" / name).read_bytes() for name in files} == files
    packs = {key for key, _ in storage.pack_reads}
    assert len(storage.pack_reads) >= 2 * len(packs)  # ~420 KB of mail in each pack read
    assert max(length for _, length in storage.pack_reads) <= 64 * 1024
    assert repository.cache.get(bytes.fromhex(snapshot.tree)) is None


def test_a_small_file_the_batch_writer_cannot_make_fails_the_restore_with_its_path(tmp_path: Path) -> None:
    """One-blob files are written by one native call a batch; one that fails there (its
    folder removed since the walk made it) is made again in Python, which raises with its
    path, as any other file's failure does. The files before it are restored whole."""
    files = {f"mail/{n:03}.eml": random_bytes(n, 500 + n) for n in range(6)}
    write_tree(tmp_path / "src", files)
    repository = small_repository(LocalStorage(tmp_path / "repo"))
    snapshot = repository.load_snapshot(backup(repository, tmp_path / "src").id)
    mail = tmp_path / "out" / "mail"

    def remove_the_folder_after_the_third_file(progress: restorer.RestoreProgress) -> None:
        if progress.files == 3:
            shutil.rmtree(mail)

    with pytest.raises(FileNotFoundError) as raised:
        Restorer(repository, workers=1, batch_blobs=1, progress=remove_the_folder_after_the_third_file).restore(
            snapshot, tmp_path / "out"
        )
    assert raised.value.filename == str(mail / "003.eml")
