"""Tree encoding: the bytes FORMAT.md defines (compact JSON, keys sorted, zero fields left out)."""

from __future__ import annotations

import json
from dataclasses import asdict

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
