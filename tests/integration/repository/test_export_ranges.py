"""A tar export measured without reading content, and resumed at any offset: what the API's
Content-Length and Range answers are built on."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.repository.exporter import export_tar, tar_length
from controller.storage.memory import MemoryStorage
from tests.support.repository import backup, random_bytes, small_repository, write_tree

_FILES = {
    "a.bin": random_bytes(1, 70_000),
    "dir/b.txt": b"hello\n" * 3000,
    "dir/empty": b"",
    "dir/deeper/c.bin": random_bytes(2, 5_000),
}


def _exported(tmp_path: Path) -> tuple[object, object, bytes]:
    source = tmp_path / "src"
    write_tree(source, _FILES)
    (source / "dir" / "hard").hardlink_to(source / "a.bin")
    repository = small_repository(MemoryStorage())
    snapshot = repository.load_snapshot(backup(repository, source).id)
    whole = io.BytesIO()
    export_tar(repository, snapshot, whole)
    return repository, snapshot, whole.getvalue()


def test_length_is_known_before_streaming(tmp_path: Path) -> None:
    repository, snapshot, whole = _exported(tmp_path)
    assert tar_length(repository, snapshot) == len(whole)  # type: ignore[arg-type]
    assert tar_length(repository, snapshot, "dir") < len(whole)  # type: ignore[arg-type]
    skipped = io.BytesIO()
    export_tar(repository, snapshot, skipped, skip_content_before=len(whole))  # type: ignore[arg-type]
    assert len(skipped.getvalue()) == len(whole)
    assert _FILES["a.bin"][:4096] in whole and _FILES["a.bin"][:4096] not in skipped.getvalue()  # not read


@settings(max_examples=25, deadline=None)
@given(fraction=st.floats(min_value=0, max_value=1))
def test_the_stream_after_any_offset_is_the_same_without_reading_what_comes_before(fraction: float) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        repository, snapshot, whole = _exported(Path(folder))
        start = int(fraction * len(whole))
        resumed = io.BytesIO()
        export_tar(repository, snapshot, resumed, skip_content_before=start)  # type: ignore[arg-type]
        assert resumed.getvalue()[start:] == whole[start:]
