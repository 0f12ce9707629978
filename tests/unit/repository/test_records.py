"""Tree encoding: the bytes FORMAT.md defines (compact JSON, keys sorted, zero fields left out)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from controller.repository.records import Node, NodeType, decode_tree, encode_tree


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
