"""Export a snapshot (or a sub-path) as a POSIX tar stream: no lock-in.

PAX format keeps nanosecond mtimes, long names, owners and xattrs (SCHILY.xattr.*), so
that `tar -x` as root yields what a restore yields. Hard links become tar link entries.
Content is streamed blob by blob: memory stays bounded whatever the snapshot's size.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
from collections.abc import Iterator
from typing import Any, BinaryIO

import zstandard

from controller.repository.file_reader import open_content
from controller.repository.records import Node, NodeType, Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import find_node

_TYPES = {
    NodeType.FILE: tarfile.REGTYPE,
    NodeType.DIR: tarfile.DIRTYPE,
    NodeType.SYMLINK: tarfile.SYMTYPE,
    NodeType.FIFO: tarfile.FIFOTYPE,
    NodeType.CHARDEV: tarfile.CHRTYPE,
    NodeType.BLOCKDEV: tarfile.BLKTYPE,
}


def export_tar_zstd(repository: Repository, snapshot: Snapshot, out: BinaryIO, level: int = 3) -> int:
    """The tar stream compressed as one zstd frame (its length is not known beforehand)."""
    with zstandard.ZstdCompressor(level=level).stream_writer(out, closefd=False) as compressing:
        return export_tar(repository, snapshot, compressing)


def export_tar(
    repository: Repository, snapshot: Snapshot, out: BinaryIO, subpath: str = "", skip_content_before: int = 0
) -> int:
    """Write the tar stream to `out`; returns the number of entries.

    File content that ends before offset `skip_content_before` of the stream is written as
    zeros instead of being read: a caller that discards the stream's start (an HTTP range
    request, measuring the stream's length) gets the same bytes after it, without reading
    the repository for the rest."""
    root = find_node(repository, snapshot, subpath)
    seen_links: dict[tuple[int, int], str] = {}
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for path, node in _walk(repository, root, root.name if root.type != NodeType.DIR else ""):
            info = _tarinfo(path, node)
            content: BinaryIO | None = None
            if node.type == NodeType.FILE:
                key = (node.device, node.inode)
                if node.links > 1 and node.inode and key in seen_links:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, seen_links[key], 0
                else:
                    seen_links.setdefault(key, path)
                    header = len(info.tobuf(archive.format, archive.encoding, archive.errors))
                    skipped = archive.offset + header + info.size <= skip_content_before
                    content = io.BufferedReader(_Zeros(info.size)) if skipped else open_content(repository, node)
            archive.addfile(info, content)
            count += 1
    return count


class _Zeros(io.RawIOBase):
    """`size` zero bytes: the stand-in for content the caller will discard."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def tar_length(repository: Repository, snapshot: Snapshot, subpath: str = "") -> int:
    """The exact length of `export_tar`'s stream, from the snapshot's trees alone."""
    counter = _Counter()
    export_tar(repository, snapshot, counter, subpath, skip_content_before=2**63)  # type: ignore[arg-type]
    return counter.count


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def _walk(repository: Repository, node: Node, path: str) -> Iterator[tuple[str, Node]]:
    if node.type != NodeType.DIR:
        yield path, node
        return
    if path:
        yield path, node
    assert node.subtree is not None
    for child in repository.load_tree(node.subtree):
        yield from _walk(repository, child, f"{path}/{child.name}" if path else child.name)


def _tarinfo(path: str, node: Node) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = _TYPES[node.type]
    info.mode = node.mode
    info.uid, info.gid = node.uid, node.gid
    info.uname = info.gname = ""
    seconds, nanoseconds = divmod(node.mtime_ns, 1_000_000_000)
    info.mtime = seconds
    info.size = node.size if node.type == NodeType.FILE else 0
    if node.type == NodeType.SYMLINK:
        info.linkname = node.target or ""
    if node.type in (NodeType.CHARDEV, NodeType.BLOCKDEV):
        info.devmajor, info.devminor = os.major(node.rdev), os.minor(node.rdev)
    info.pax_headers = {
        f"SCHILY.xattr.{name}": base64.b64decode(value).decode("utf-8", "surrogateescape")
        for name, value in node.xattrs.items()
    }
    if nanoseconds:
        # An exact decimal: a float such as 1e-09 is misread by GNU tar.
        info.pax_headers["mtime"] = f"{seconds}.{nanoseconds:09d}"
    return info
