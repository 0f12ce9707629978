"""GET /api/v1/backups/download/{id}: the backup as a tar stream, never staged on disk.

The export runs in a thread that writes into a small bounded queue; the response iterates
the queue. Memory is the queue's few MiB whatever the backup's size. A client that goes
away stops the export (its next write fails) and releases the repository lease. The tar's
length is known beforehand from the snapshot's trees, so plain downloads carry
Content-Length and answer single Range requests; zstd-compressed ones are streamed as
produced (their length is not known, so neither is sent)."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from controller.errors import LifeboatError
from controller.repository.exporter import export_tar, export_tar_zstd, tar_length
from controller.repository.records import Snapshot
from controller.repository.repository import Repository

CHUNK = 256 * 1024
QUEUE_CHUNKS = 16  # at most this many chunks wait for the client: 4 MiB
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(LifeboatError):
    """The Range header asks for bytes outside the download (416)."""

    code = "RANGE_NOT_SATISFIABLE"


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """One `bytes=a-b`, `a-` or `-n` range; None for no header or several ranges (then the
    whole body is sent, as RFC 9110 allows)."""
    if not header or "," in header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(f"cannot read the Range header {header!r}; expected bytes=START-END")
    first, last = match.group(1), match.group(2)
    if first == "":
        start, end = max(0, length - int(last)), length - 1
    else:
        start, end = int(first), min(int(last), length - 1) if last else length - 1
    if start >= length or start > end:
        raise RangeNotSatisfiable(f"range {header} is outside the {length} bytes of this download")
    return ByteRange(start, end)


class _Cancelled(Exception):
    """The client went away, or the requested range is complete."""


class _QueueWriter:
    """The export's output: drops bytes before the range, stops after it, and hands the
    rest to the response through a bounded queue (so a slow client slows the export)."""

    def __init__(self, chunks: queue.Queue[bytes | None], cancelled: threading.Event, window: ByteRange | None) -> None:
        self.chunks, self.cancelled = chunks, cancelled
        self.position, self.window = 0, window
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        start, self.position = self.position, self.position + len(data)
        if self.window is not None:
            low, high = max(self.window.start, start), min(self.window.end + 1, self.position)
            if low < high:
                self.buffer += memoryview(data)[low - start : high - start]
            if self.position > self.window.end:
                self.flush()
                raise _Cancelled
        else:
            self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self._put(bytes(self.buffer))
            self.buffer.clear()

    def _put(self, chunk: bytes) -> None:
        while True:
            if self.cancelled.is_set():
                raise _Cancelled
            try:
                self.chunks.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue


@dataclass
class TarDownload:
    """A prepared download: the repository is opened and the snapshot read; `body()` streams."""

    repository: Repository
    snapshot: Snapshot
    hold_lease: Callable[[], AbstractContextManager[object]]  # the shared lease, held while exporting
    compressed: bool = False
    window: ByteRange | None = None

    def length(self) -> int | None:
        return None if self.compressed else tar_length(self.repository, self.snapshot)

    def start(self) -> Transfer:
        """Start the export thread; the caller takes chunks with `next_chunk` and must call
        `cancel` when it stops early (the client went away)."""
        transfer = Transfer(queue.Queue(maxsize=QUEUE_CHUNKS), threading.Event(), [])
        threading.Thread(target=self._produce, args=(transfer,), daemon=True, name="download").start()
        return transfer

    def _produce(self, transfer: Transfer) -> None:
        writer = _QueueWriter(transfer.chunks, transfer.cancelled, self.window)
        try:
            with self.hold_lease():
                skip = self.window.start if self.window else 0
                if self.compressed:
                    export_tar_zstd(self.repository, self.snapshot, writer)  # type: ignore[arg-type]
                else:
                    export_tar(self.repository, self.snapshot, writer, skip_content_before=skip)  # type: ignore[arg-type]
                writer.flush()
        except _Cancelled:
            pass
        except BaseException as err:  # reported to the response's iterator
            transfer.failure.append(err)
        finally:
            with contextlib.suppress(queue.Full):
                transfer.chunks.put(None, timeout=5)


@dataclass
class Transfer:
    chunks: queue.Queue[bytes | None]
    cancelled: threading.Event
    failure: list[BaseException]

    def next_chunk(self) -> bytes | None:
        """The next chunk, or None at the end; raises what stopped the export early (the
        response is then cut short, and the client sees an incomplete body)."""
        chunk = self.chunks.get()
        if chunk is None and self.failure:
            raise self.failure[0]
        return chunk

    def cancel(self) -> None:
        self.cancelled.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock the producer if it waits for room
                self.chunks.get_nowait()
