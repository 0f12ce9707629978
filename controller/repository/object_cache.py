"""A local copy of the repository objects every job reads again: snapshots, index files and
tree packs, so that opening a big repository, or an unchanged re-backup on S3, costs a few
listings instead of a GET per object.

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
from collections.abc import Callable, Iterable
from pathlib import Path

from controller.repository.crypto import content_hash

OFF = "off"


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
        self._keep(key, data)
        return data

    def load_range(self, key: str, offset: int, length: int, fetch_whole: Callable[[], bytes]) -> bytes:
        """`length` bytes at `offset` of `key`; the whole object is fetched and kept when
        there is no copy. The caller authenticates what it gets and calls `discard` if that fails."""
        try:
            with (self.directory / key).open("rb") as handle:
                handle.seek(offset)
                found = handle.read(length)
            if len(found) == length:
                return found
        except OSError:
            pass
        data = fetch_whole()
        self._keep(key, data)
        return data[offset : offset + length]

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

    def _keep(self, key: str, data: bytes) -> None:
        """Write the copy (temp file, then rename: readers never see half a copy), only when
        the bytes match the name. Failure to write is not an error."""
        if content_hash(data) != _name(key):
            return
        path = self.directory / key
        temp = path.with_name(f".tmp-{secrets.token_hex(8)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(data)
            os.replace(temp, path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()


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
