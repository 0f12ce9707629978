"""Status write-back: only the status block of one document changes, byte for byte."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import InvalidResource, WriteConflict
from controller.resources.backup_policy import BackupCounts, BackupPolicyStatus
from controller.resources.loader import load_paths, sidecar_path
from controller.resources.meta import StatusMode, spec_generation
from controller.resources.writeback import status_mapping, write_status

# A model of a YAML file: documents made of lines we know the meaning of, so the expected
# bytes after any status write can be computed independently of the code under test.

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_comment_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\r\n\x85"),
    max_size=30,
)
_scalar = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    _comment_text.map(lambda s: json.dumps(s)),  # double-quoted, escapes are valid YAML
    _comment_text.map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(["true", "null", "~", "1.5", "[1, 2]", "{a: b}"]),
)
_blank_or_comment = st.one_of(st.just("\n"), _comment_text.map(lambda s: f"#{s}\n"))


@dataclass
class Doc:
    name: str
    head: list[str]  # lines before the status position
    tail: list[str]  # lines after it
    status_text: str | None  # the status block as it stands, None when absent
    ends_with_newline: bool = True
    spec: dict[str, object] = field(default_factory=dict)
    appended: bool = False  # the status block was added at the end by a write

    def render(self) -> str:
        if self.appended:
            assert self.status_text is not None
            return "".join(self.head) + "".join(self.tail) + self.status_text
        text = "".join(self.head) + (self.status_text or "") + "".join(self.tail)
        return text if self.ends_with_newline else text[:-1]

    def write(self, new_status: str) -> None:
        """The documented rule: replace the block in place, or append it at the end."""
        if self.status_text is None:
            self.appended = True
        elif not self.appended and not self.tail:
            self.ends_with_newline = True  # the new block ends with a newline
        self.status_text = new_status


@st.composite
def nested_block(draw: st.DrawFn, key: str) -> tuple[str, dict[str, object]]:
    """`key:` followed by indented entries, indented comments and inner blank lines."""
    names = draw(st.lists(_words.map(lambda w: f"k{w}"), min_size=1, max_size=4, unique=True))
    lines, values = [f"{key}:\n"], {}
    for index, name in enumerate(names):
        if index and draw(st.booleans()):
            lines.append(draw(st.sampled_from(["\n", "  # inside\n", "    # deeper\n"])))
        value = draw(_scalar)
        trailing = draw(st.sampled_from(["", "  # note"]))
        lines.append(f"  {name}: {value}{trailing}\n")
        values[name] = yaml.safe_load(value)
    return "".join(lines), values


@st.composite
def documents(draw: st.DrawFn, name: str, last: bool) -> Doc:
    spec_text, spec = draw(nested_block("spec"))
    extra_keys = draw(st.lists(_words.map(lambda w: f"x{w}"), max_size=3, unique=True))
    entries = [
        "apiVersion: lifeboat.io/v1alpha1\n",
        "kind: BackupPolicy\n",
        f"metadata:\n  name: {name}  # the name\n",
        spec_text,
    ]
    for key in extra_keys:
        if draw(st.booleans()):
            entries.append(f"{key}: {draw(_scalar)}\n")
        else:
            entries.append(draw(nested_block(key))[0])
    order = draw(st.permutations(list(range(len(entries)))))
    lines: list[str] = []
    for index in order:
        lines.extend(draw(st.lists(_blank_or_comment, max_size=2)))
        lines.append(entries[index])
    lines.extend(draw(st.lists(_blank_or_comment, max_size=2)))
    has_status = draw(st.booleans())
    split = draw(st.integers(0, len(lines))) if has_status else len(lines)
    # A status block may not start inside another entry: split only between whole lines
    # that begin at column 0 (entries and top-level comments), which is every element here.
    status_text = draw(nested_block("status"))[0] if has_status else None
    ends_with_newline = not last or draw(st.booleans())
    if not ends_with_newline and status_text is None and (not lines or lines[-1] == "\n"):
        ends_with_newline = True  # stripping would remove a blank-line element, not just "\n"
    return Doc(name, lines[:split], lines[split:], status_text, ends_with_newline, spec)


@st.composite
def yaml_files(draw: st.DrawFn) -> list[Doc]:
    count = draw(st.integers(1, 4))
    return [draw(documents(f"doc-{i}", last=i == count - 1)) for i in range(count)]


def render_file(docs: list[Doc], separators: list[str]) -> str:
    text = docs[0].render()
    for doc, separator in zip(docs[1:], separators, strict=False):
        text += separator + doc.render()
    return text


_statuses = st.builds(
    BackupPolicyStatus,
    observed_generation=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    last_error=st.one_of(st.none(), _comment_text, st.just("a: b # not a comment\nsecond line")),
    counts=st.builds(BackupCounts, total=st.integers(0, 1000), succeeded=st.integers(0, 1000)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    docs=yaml_files(),
    separators=st.lists(st.sampled_from(["---\n", "--- # next\n", "...\n---\n"]), min_size=3, max_size=3),
    writes=st.lists(st.tuples(st.integers(0, 3), _statuses), min_size=1, max_size=5),
)
def test_status_writes_change_only_status_blocks(
    tmp_path: Path, docs: list[Doc], separators: list[str], writes: list[tuple[int, BackupPolicyStatus]]
) -> None:
    path = tmp_path / "resources.yaml"
    path.write_text(render_file(docs, separators), encoding="utf-8")
    for target, status in writes:
        doc = docs[target % len(docs)]
        write_status(path, "BackupPolicy", doc.name, spec_generation(doc.spec), status)
        rendered = yaml.safe_dump(
            {"status": status_mapping(status)},
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=4096,
        )
        doc.write(rendered)
        assert path.read_text(encoding="utf-8") == render_file(docs, separators)
        parsed = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        by_name = {d["metadata"]["name"]: d for d in parsed}
        assert by_name[doc.name]["status"] == status_mapping(status)
        assert by_name[doc.name]["spec"] == doc.spec


POLICY = """\
# leading comment
apiVersion: lifeboat.io/v1alpha1
kind: BackupPolicy
metadata:
  name: wp   # keep me
spec:
  app: wp
  retention: {keepLast: 2}
  storage: local
"""


def _write(path: Path, status: BackupPolicyStatus, mode: StatusMode = StatusMode.INLINE) -> bool:
    loaded = load_paths([path]).resources[0]
    return write_status(path, "BackupPolicy", "wp", loaded.generation, status, mode).changed


def test_same_status_twice_writes_once(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    assert _write(path, BackupPolicyStatus(last_error="x")) is True
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert _write(path, BackupPolicyStatus(last_error="x")) is False
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_spec_changed_since_read_is_a_conflict_and_file_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    stale = load_paths([path]).resources[0].generation
    edited = POLICY.replace("keepLast: 2", "keepLast: 5")
    path.write_text(edited)
    with pytest.raises(WriteConflict, match="spec changed"):
        write_status(path, "BackupPolicy", "wp", stale, BackupPolicyStatus(last_error="stale"))
    assert path.read_text() == edited


def test_resource_gone_from_file_is_a_conflict(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    generation = load_paths([path]).resources[0].generation
    path.write_text(POLICY.replace("name: wp", "name: other"))
    with pytest.raises(WriteConflict, match="no longer in this file"):
        write_status(path, "BackupPolicy", "wp", generation, BackupPolicyStatus())


def test_sidecar_mode_leaves_the_resource_file_alone_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    text = POLICY.replace("storage: local", "storage: local\n  statusMode: sidecar")
    path.write_text(text)
    assert _write(path, BackupPolicyStatus(last_error="in sidecar"), StatusMode.SIDECAR)
    assert path.read_text() == text
    assert "in sidecar" in sidecar_path(path).read_text()
    loaded = load_paths([tmp_path])
    assert loaded.problems == []
    status = loaded.resources[0].resource.status
    assert status is not None and status.last_error == "in sidecar"  # type: ignore[union-attr]


def test_flow_style_document_refuses_inline_status(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "{apiVersion: lifeboat.io/v1alpha1, kind: BackupPolicy, metadata: {name: wp}, "
        "spec: {app: wp, retention: {keepLast: 1}, storage: s}}\n"
    )
    with pytest.raises(InvalidResource, match="sidecar"):
        _write(path, BackupPolicyStatus())


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    _write(path, BackupPolicyStatus(last_error="x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_file_mode_is_preserved(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    path.chmod(0o600)
    _write(path, BackupPolicyStatus(last_error="x"))
    assert path.stat().st_mode & 0o777 == 0o600
