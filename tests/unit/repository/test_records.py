"""Tree encoding: the bytes FORMAT.md defines (compact JSON, keys sorted, zero fields left out)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest

from controller.repository.records import _DECODE_WHOLE, Node, NodeType, decode_tree, encode_tree


def test_a_tree_is_compact_json_with_every_key_sorted() -> None:
    """Trees are named by their bytes: the same listing must encode the same way in every version."""
    nodes = [
        Node(
            "zeta.txt",
            NodeType.FILE,
            size=12,
            mtime_ns=5,
            content=["ab" * 32],
            xattrs={"user.z": "eg==", "user.a": "YQ=="},
        ),
        Node("dir", NodeType.DIR, mode=0o755, subtree="cd" * 32, uid=1000, gid=1000),
        Node("link", NodeType.SYMLINK, mode=0o777, target="zeta.txt"),
        Node("tty", NodeType.CHARDEV, mode=0o620, rdev=1025),
        Node("empty", NodeType.FILE, mode=0),
    ]
    always = {"name", "type", "mode"}
    expected = json.dumps(
        {
            "nodes": [
                {k: v for k, v in asdict(n).items() if v or k in always} for n in sorted(nodes, key=lambda n: n.name)
            ]
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    assert encode_tree(nodes) == expected
    assert decode_tree(encode_tree(nodes)) == sorted(nodes, key=lambda n: n.name)


@pytest.mark.parametrize("count", [0, 1, 1024, 1025, 2500])
def test_a_big_tree_is_encoded_in_parts_to_the_bytes_of_one_json_text(count: int) -> None:
    """encode_tree makes a big folder's JSON a part at a time (memory); its bytes, and so
    its id and deduplication against older snapshots, stay those of one json.dumps."""
    names = ["mail-é", "\udcff-raw-byte", 'quote"and\\slash', "日本語", "plain"]
    nodes = [
        Node(f"{names[i % len(names)]}-{i:05d}", NodeType.FILE, size=i, mtime_ns=i * 7, content=[f"{i:064x}"])
        for i in reversed(range(count))
    ]
    always = {"name", "type", "mode"}
    ordered = sorted(nodes, key=lambda n: n.name)
    one_text = {"nodes": [{k: v for k, v in asdict(n).items() if v or k in always} for n in ordered]}
    assert encode_tree(nodes) == json.dumps(one_text, sort_keys=True, separators=(",", ":")).encode()
    assert decode_tree(encode_tree(nodes)) == ordered


def _big_folder(count: int) -> list[Node]:
    return [Node(f"mail-{i:06d}", NodeType.FILE, size=i, mtime_ns=i * 7, content=[f"{i:064x}"]) for i in range(count)]


def test_a_big_tree_is_decoded_a_node_at_a_time() -> None:
    """Decoded at once, a folder of 100,000 files' tree was 74 MiB of dicts before its
    first node: a tree above `_DECODE_WHOLE` is read a node at a time, so the decode holds
    little beyond its text and the nodes it returns."""
    nodes = _big_folder(10_000)
    raw = bytes(encode_tree(nodes))
    assert len(raw) > _DECODE_WHOLE
    tracemalloc.start()
    try:
        decoded = decode_tree(raw)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded == nodes
    assert peak - held < 1.3 * len(raw), (peak - held) / len(raw)  # at once: twice the text


@pytest.mark.parametrize(
    "written",
    [
        lambda tree: json.dumps(tree).encode(),  # spaces after the separators
        lambda tree: json.dumps({**tree, "extra": 1}, separators=(",", ":")).encode(),
        lambda tree: json.dumps({"nodes": [*tree["nodes"], {"name": "x"}]}, separators=(",", ":")).encode(),
    ],
    ids=["spaced", "another-key", "a-node-without-type"],
)
def test_a_big_tree_in_another_form_is_decoded_whole_as_json_loads_would(written: Callable[[Any], bytes]) -> None:
    """The node-at-a-time reader takes only what encode_tree writes; any other JSON is
    decoded at once, so it gives the same nodes, or the same error, as before."""
    nodes = _big_folder(10_000)
    tree = json.loads(bytes(encode_tree(nodes)))
    raw = written(tree)
    assert len(raw) > _DECODE_WHOLE
    try:
        expected: list[Node] | type[Exception] = [Node.from_json(item) for item in json.loads(raw)["nodes"]]
    except Exception as err:  # the error is what must match
        expected = type(err)
    if isinstance(expected, list):
        assert decode_tree(raw) == expected
    else:
        with pytest.raises(expected):
            decode_tree(raw)
