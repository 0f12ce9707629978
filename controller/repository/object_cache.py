"""A local copy of the repository objects every job reads again: snapshots, index files and
tree packs, so that opening a big repository, or an unchanged re-backup on S3, costs a few
listings instead of a GET per object. Each is copied when a job stores it (a backup, a
prune) or first reads it.

Every object in a repository is write-once and named by the BLAKE3 of its stored bytes,
so a copy is kept consistent by its name alone: a whole object is checked against its
name before it is kept and when it is read back, and a range read from a tree pack is
checked by the blob's own authentication (a copy that fails it is dropped and read from
the storage again). Objects a listing no longer shows (forgotten snapshots, index files
replaced by prune) are removed from the copy at that listing.

The copy lives under `$LIFEBOAT_CACHE_DIR` (default `$XDG_CACHE_HOME/lifeboat`, else
`~/.cache/lifeboat`), one folder per repository id; `LIFEBOAT_CACHE_DIR=off` turns it off.
It is only a speed-up: a copy that cannot be written (a full disk, a read-only home) is
skipped. `check` never uses it, since it must see what the storage holds: it fills a
fresh one in a temporary folder instead (`Repository.uncached`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from controller.repository.crypto import content_hash, content_hasher
from controller.storage.base import Payload, Storage, payload_parts

OFF = "off"
_PART = 4 * 1024 * 1024  # a pack is copied in ranged reads of this size, never held whole


class ObjectCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_repository(cls, repository_id: str) -> ObjectCache | None:
        """The cache configured by the environment for this repository, or None (off)."""
        root = configured_root()
        return None if root is None else cls(root / repository_id)

    def load(self, key: str, fetch: Callable[[], bytes]) -> bytes:
        """The whole object `key`: the copy if it matches its name, else fetched (and kept)."""
        path = self.directory / key
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            if content_hash(data) == _name(key):
                return data
            path.unlink()
        data = fetch()
        self._keep(key, [data])
        return data

    def keep(self, key: str, data: Payload) -> None:
        """Copy an object this process has just stored, as restic does: the next job on
        this host then reads it here, instead of fetching it back (a cold copy raised a
        million-file re-backup's peak by a quarter, and costs a GET per object on S3)."""
        self._keep(key, payload_parts(data, _PART))

    def load_range(self, key: str, offset: int, length: int, storage: Storage) -> bytes:
        """`length` bytes at `offset` of `key`: from the copy, made first when there is none;
        from `storage` alone when no copy can be made. The caller authenticates what it gets
        and calls `discard` if that fails."""
        found = self._read_range(key, offset, length)
        if found is None and self._copy_in_parts(key, storage):
            found = self._read_range(key, offset, length)
        return found if found is not None else storage.load(key, offset, length)

    def _read_range(self, key: str, offset: int, length: int) -> bytes | None:
        try:
            with (self.directory / key).open("rb") as handle:
                handle.seek(offset)
                found = handle.read(length)
        except OSError:
            return None
        return found if len(found) == length else None

    def _copy_in_parts(self, key: str, storage: Storage) -> bool:
        """Copy `key` from `storage` in ranged reads of `_PART` bytes. Held whole, a 16 MiB
        tree pack fetched while the tree LRU was full raised a million-file re-backup's
        peak by 16 MiB."""
        size = storage.stat(key).size  # no range past the end: S3 refuses one

        def parts() -> Iterator[bytes]:
            position = 0
            while position < size:
                part = storage.load(key, position, min(_PART, size - position))
                if not part:
                    return  # shorter than its listing: its hash will not match its name
                yield part
                position += len(part)

        return self._keep(key, parts())

    def discard(self, key: str) -> None:
        with contextlib.suppress(OSError):
            (self.directory / key).unlink()

    def keep_only(self, prefix: str, keys: Iterable[str]) -> None:
        """Remove the copies under `prefix` (a folder, "index/") whose key is not in `keys`."""
        wanted = set(keys)
        folder = self.directory / prefix
        with contextlib.suppress(OSError):
            for path in folder.rglob("*"):
                if path.is_file() and f"{prefix}{path.relative_to(folder)}" not in wanted:
                    path.unlink()

    def _keep(self, key: str, parts: Iterable[bytes | memoryview]) -> bool:
        """Write the copy from `parts`, hashed as they come (temp file, then rename: readers
        never see half a copy), kept only when its bytes match the name. Failure to write
        is not an error: the copy is skipped (False)."""
        path = self.directory / key
        temp = path.with_name(f".tmp-{secrets.token_hex(8)}")
        hasher, kept = content_hasher(), False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with temp.open("wb") as handle:
                for part in parts:
                    hasher.update(part)
                    handle.write(part)
            if hasher.hexdigest() == _name(key):
                os.replace(temp, path)
                kept = True
        except OSError:
            pass
        finally:
            if not kept:
                with contextlib.suppress(OSError):
                    temp.unlink()
        return kept


def save_and_keep(storage: Storage, objects: ObjectCache | None, key: str, data: Payload) -> None:
    """Store `key`, then keep a local copy of it when there are local copies."""
    storage.save(key, data)
    if objects is not None:
        objects.keep(key, data)


def configured_root() -> Path | None:
    """The folder the environment sets for local copies, or None when they are off."""
    configured = os.environ.get("LIFEBOAT_CACHE_DIR", "")
    if configured == OFF:
        return None
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lifeboat"


def scratch_parent() -> Path | None:
    """Where a check keeps its own copy: beside the local copies, on the disk chosen for
    them (/tmp may be memory: a tmpfs in the Compose deployment), or in the system's
    temporary folder (None) when they are off or their folder cannot be made."""
    root = configured_root()
    if root is None:
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]
