"""Multi-document YAML files as byte ranges, so that one document can be edited in place.

A document marker (`---` or `...`) can only stand at column 0 outside any scalar, so a
line-based split finds documents exactly; each piece is then parsed on its own, which lets
one broken document be reported while the others still load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

_MARKER = re.compile(r"^(---|\.\.\.)(\s|$)")


@dataclass(frozen=True)
class Document:
    """One YAML document: its text and where that text sits in the file."""

    index: int  # 0-based among the file's non-empty documents
    start: int  # character offset of the first line after the marker
    end: int  # offset just past the document's last line
    first_line: int  # 1-based line number of `start` in the file

    def text_of(self, file_text: str) -> str:
        return file_text[self.start : self.end]


def split_documents(text: str) -> list[Document]:
    """Documents holding anything but blank lines and comments, in file order."""
    pieces: list[tuple[int, int, int]] = []
    start, start_line, offset = 0, 1, 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _MARKER.match(line):
            pieces.append((start, offset, start_line))
            start, start_line = offset + len(line), number + 1
        offset += len(line)
    pieces.append((start, len(text), start_line))
    documents: list[Document] = []
    for begin, end, first_line in pieces:
        if _has_content(text[begin:end]):
            documents.append(Document(len(documents), begin, end, first_line))
    return documents


def _has_content(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def compose(text: str) -> yaml.Node | None:
    """Parse one document to a node tree (marks give lines); raises yaml.YAMLError."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def mapping_value(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) pair for `key` in a mapping node, if present."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def line_of_path(root: yaml.Node | None, path: tuple[str | int, ...]) -> int | None:
    """0-based line of the deepest node along `path` (keys and list indices) that exists."""
    if root is None:
        return None
    node: yaml.Node = root
    line: int = node.start_mark.line
    for step in path:
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line
        elif isinstance(step, str) and (pair := mapping_value(node, step)) is not None:
            line = pair[0].start_mark.line  # the key's line reads best for nested mappings too
            node = pair[1]
    return line


class YamlSyntaxError(ValueError):
    """Text that is not YAML; str() says where."""


def parse_yaml(text: str) -> Any:
    """One YAML document as plain data (safe: no tags). Raises YamlSyntaxError."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise YamlSyntaxError(str(err)) from None


def dump_yaml(data: Any) -> str:
    """Plain data as block-style YAML, keys in their order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
