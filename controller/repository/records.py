"""Plain records stored in the repository: tree nodes, trees, snapshots, the config.

Trees are JSON (compact, keys sorted) stored as TREE blobs; names are file-system bytes
decoded with surrogateescape, which JSON carries as \\udcXX escapes, so any name survives.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class NodeType(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    FIFO = "fifo"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"


@dataclass
class Node:
    name: str
    type: NodeType
    mode: int = 0o644  # permission bits (st_mode & 0o7777)
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0  # for incremental change detection only; not restorable
    inode: int = 0
    device: int = 0
    links: int = 1
    size: int = 0
    content: list[str] = field(default_factory=list)  # DATA blob ids, in order
    subtree: str | None = None  # TREE blob id of a directory
    target: str | None = None  # symlink target
    rdev: int = 0  # device number of char/block devices
    xattrs: dict[str, str] = field(default_factory=dict)  # name → base64 value

    def to_json(self) -> dict[str, Any]:
        """Fields at their zero value (None, 0, [], {}; a symlink's target is never "") are left
        out; name, type and mode always stay. Read from
        the instance's own fields: dataclasses.asdict deep-copies every node, and that was a
        fifth of the walk of a folder of small files. Keys come in sorted order, xattrs' too,
        so that a tree is encoded without sorting every node's keys again (FORMAT.md: keys sorted)."""
        values = vars(self)
        found = {k: values[k] for k in _FIELDS_SORTED if values[k] or k in _ALWAYS_WRITTEN}
        if self.xattrs:
            found["xattrs"] = dict(sorted(self.xattrs.items()))
        return found

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(**{**data, "type": _NODE_TYPES.get(data["type"]) or NodeType(data["type"])})


_ALWAYS_WRITTEN = frozenset({"name", "type", "mode"})
_FIELDS_SORTED = tuple(sorted(f.name for f in fields(Node)))
_NODE_TYPES = {kind.value: kind for kind in NodeType}  # a dict lookup costs less than calling the enum


_TREE_ENCODER = json.JSONEncoder(separators=(",", ":"))
_TREE_CHUNK = 1024  # nodes turned into dicts and JSON at once


def encode_tree(nodes: list[Node]) -> bytearray:
    """The bytes of json.dumps({"nodes": [...]}) (a tree's id is the hash of them), made
    `_TREE_CHUNK` nodes at a time: every node's dict and the whole text at once peaked at
    105 MiB beside a folder of 100,000 files' nodes; in parts, 56 (the text and its copy).
    Given as the bytearray it was made in: a bytes copy was 25 MB more at that peak."""
    ordered = sorted(nodes, key=lambda n: n.name)
    out = bytearray(b'{"nodes":[')
    for start in range(0, len(ordered), _TREE_CHUNK):
        if start:
            out += b","
        chunk = _TREE_ENCODER.encode([n.to_json() for n in ordered[start : start + _TREE_CHUNK]])
        out += chunk[1:-1].encode()
    out += b"]}"
    return out


_TREE_DECODER = json.JSONDecoder()
_TREE_START, _TREE_END = '{"nodes":[', "]}"
_DECODE_WHOLE = 1024 * 1024  # a tree up to this size is decoded at once, a larger one a node at a time


def decode_tree(raw: bytes) -> list[Node]:
    """The nodes of a tree's JSON. A big one is read a node at a time: decoded at once, a
    folder of 100,000 files gave 74 MiB of dicts before the first node was made (and the
    scan of the same folder was listing beside it)."""
    if len(raw) <= _DECODE_WHOLE:
        return [Node.from_json(item) for item in json.loads(raw)["nodes"]]
    text = raw.decode()
    del raw  # the caller's plaintext: its last reference when the call was `decode_tree(load_blob(...))`
    nodes = _decode_by_node(text)
    return nodes if nodes is not None else [Node.from_json(item) for item in json.loads(text)["nodes"]]


def _decode_by_node(text: str) -> list[Node] | None:
    """The nodes of the compact JSON `encode_tree` writes; None for any other form of it
    (whitespace, more keys), which is then decoded at once."""
    if not text.startswith(_TREE_START) or not text.endswith(_TREE_END):
        return None
    nodes, position, end = [], len(_TREE_START), len(text) - len(_TREE_END)
    try:
        while position < end:
            item, position = _TREE_DECODER.raw_decode(text, position)
            nodes.append(Node.from_json(item))
            if text[position] == ",":
                position += 1
            elif position != end:
                return None
    except (ValueError, TypeError):  # malformed JSON, or an item that is no node: json.loads says which
        return None
    return nodes


@dataclass
class Summary:
    files: int = 0
    dirs: int = 0
    bytes: int = 0  # plaintext bytes of all files and streams in the snapshot
    bytes_read: int = 0  # bytes actually read (unchanged files are not read in incrementals)
    bytes_added: int = 0  # sealed bytes newly stored
    blobs_added: int = 0
    duration_seconds: float = 0.0


@dataclass
class Snapshot:
    time: str  # RFC 3339
    tree: str  # root TREE blob id
    hostname: str
    tags: dict[str, str] = field(default_factory=dict)  # app, policy, type, host, ...
    paths: list[str] = field(default_factory=list)  # top-level names in the root tree
    parent: str | None = None
    summary: Summary = field(default_factory=Summary)
    warnings: list[str] = field(default_factory=list)
    version: int = 1

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Snapshot:
        data = json.loads(raw)
        return cls(**{**data, "summary": Summary(**data["summary"])})


@dataclass(frozen=True)
class ChunkerParams:
    min_size: int = 512 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class RepositoryConfig:
    id: str
    chunker: ChunkerParams = ChunkerParams()
    pack_size: int = 16 * 1024 * 1024
    version: int = 1

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> RepositoryConfig:
        data = json.loads(raw)
        known = {"id", "chunker", "pack_size", "version"}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "chunker": ChunkerParams(**data["chunker"])})
