"""Directory listings made ahead of the walk by a thread of their own, in the walk's order.

A backup of many small files is one thread's work: its walk reads the small files itself
(see archiver.py), and a third of that time went to each file's system calls. The native
`_dirscan.scan_directory` makes a whole directory's calls (lstat, llistxattr, and the
reads of its small files) with the GIL released once; run here in a thread of its own, the
kernel's part of the walk moves to the other core and the walk keeps only the hashing,
sealing and trees. It also compresses those contents (`blobs.frame_blobs`: one call a
directory, the GIL released throughout), which took a sixth of the walk's time when the
walk compressed each file. The scanner goes depth first, a directory before its
subdirectories, by name, as the walk does, through a short queue: a few directories
ahead, each with at most `_CONTENT_BUDGET` bytes of content, so its memory does not grow
with the tree.
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from controller.repository._dirscan import scan_directory
from controller.repository.blobs import frame_blobs

_CONTENT_BUDGET = 2 * 1024 * 1024  # bytes of small files' content read ahead per directory
_AHEAD = 4  # directories listed ahead of the walk


class Listed(NamedTuple):
    """One directory entry as the scan found it."""

    name: str
    info: os.stat_result | None  # its lstat; None when that failed
    error: int  # the lstat's errno when `info` is None
    maybe_xattrs: bool  # False when llistxattr said it has none
    content: bytes | None  # a small regular file read whole, unchanged since its lstat


@dataclass(frozen=True)
class Listing:
    path: str
    entries: list[Listed]  # by name
    error: OSError | None = None  # the directory could not be listed
    framed: dict[str, bytes] = field(default_factory=dict)  # by name: contents framed ahead (blobs.frame_blob)

    def path_of(self, name: str) -> str:
        """An entry's path, as os.scandir gives it."""
        return self.path + name if self.path.endswith("/") else f"{self.path}/{name}"

    def drain(self) -> Iterator[Listed]:
        """The entries in order, each dropped from the listing as it is given: held until
        the walk left the folder, a folder of 20,000 new files kept 7 MiB of stat results."""
        entries = self.entries
        entries.reverse()
        while entries:
            yield entries.pop()

    def subdirectories(self, skip: frozenset[str]) -> Iterator[tuple[Listed, str]]:
        """The entries the walk descends into, in its order: the scan follows the same."""
        for entry in self.entries:
            if entry.info is not None and stat.S_ISDIR(entry.info.st_mode):
                path = self.path_of(entry.name)
                if path not in skip:
                    yield entry, path


def list_directory(path: str, inline_limit: int, budget: int) -> Listing:
    """`path`'s entries, sorted, with the content of regular files of at most `inline_limit`
    bytes while their total stays within `budget` (0: no content)."""
    try:
        found = scan_directory(path, inline_limit, budget)
    except OSError as err:
        return Listing(path, [], err)
    return Listing(path, sorted(map(Listed._make, found), key=_name))


def _name(entry: Listed) -> str:
    return entry.name


class _Stopped(Exception):
    """The walk stopped listening."""


class Scanner:
    """Lists the tree below `root` ahead of the walk; `next(path)` gives the walk each
    directory's listing in turn. Use as a context manager: leaving it stops the thread.

    `frame_level` above 0: the contents of at most `frame_limit` bytes (one chunk each)
    are framed at that compression level too."""

    def __init__(
        self,
        root: str,
        skip: frozenset[str],
        inline_limit: int,
        read_content: bool,
        frame_level: int = 0,
        frame_limit: int = 0,
    ) -> None:
        self._root, self._skip, self._inline_limit = root, skip, inline_limit
        self._budget = _CONTENT_BUDGET if read_content else 0
        self._frame_level, self._frame_limit = frame_level, frame_limit
        self._listings: queue.Queue[Listing | BaseException] = queue.Queue(maxsize=_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scan", daemon=True)

    def __enter__(self) -> Scanner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def next(self, path: str) -> Listing:
        """The listing of `path`, which must be the next directory in the walk's order."""
        found = self._listings.get()
        if isinstance(found, BaseException):
            raise found
        if found.path != path:
            raise RuntimeError(f"the scan listed {found.path!r} where the walk is at {path!r}")
        return found

    def _run(self) -> None:
        with contextlib.suppress(_Stopped):
            try:
                self._scan(self._root)
            except BaseException as err:  # given to the walk, which raises it
                self._put(err)
            else:  # a walk that asks for more than the tree holds is a bug, not a hang
                self._put(RuntimeError(f"the scan of {self._root!r} ended before the walk"))

    def _scan(self, path: str) -> None:
        listing = list_directory(path, self._inline_limit, self._budget)
        if self._frame_level > 0:
            listing = replace(listing, framed=self._framed(listing.entries))
        subdirectories = [path for _, path in listing.subdirectories(self._skip)]  # the walk drains the entries
        self._put(listing)
        for subdirectory in subdirectories:
            self._scan(subdirectory)

    def _framed(self, entries: list[Listed]) -> dict[str, bytes]:
        """The frames of the contents that are one chunk each, by name."""
        chosen = {e.name: e.content for e in entries if e.content and len(e.content) <= self._frame_limit}
        return dict(zip(chosen, frame_blobs(list(chosen.values()), self._frame_level), strict=True))

    def _put(self, item: Listing | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._listings.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped
