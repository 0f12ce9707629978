"""Progress on a terminal (rich), silence otherwise, so that piped output stays parseable.

rich is imported only when a display is shown: its import was 30 ms of the start of
every backup, which a job from cron or a script (no terminal) does not need."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressDisplay:
    """What a long-running verb reports to; does nothing when not on a terminal."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task
        self._last = 0.0

    def update(self, done: int, files: int, current: str = "") -> None:
        if self._progress is None or self._task is None:
            return
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._progress.update(self._task, completed=done, files=files)

    @property
    def shown(self) -> bool:
        return self._progress is not None

    def set_total(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)


@contextmanager
def byte_progress(label: str, total: int | None, enabled: bool) -> Iterator[ProgressDisplay]:
    if not enabled or not sys.stderr.isatty():
        yield ProgressDisplay(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = [
        TextColumn(label),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]} files"),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield ProgressDisplay(progress, progress.add_task(label, total=total, files=0))


def scan_total(paths: list[Path], display: ProgressDisplay) -> threading.Thread:
    """Sum the sizes of regular files under `paths` in the background, then give the
    display its total, so that it can show an ETA (the backup itself does not wait)."""

    def scan() -> None:
        total = 0
        for root in paths:
            for directory, _dirs, files in os.walk(root):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(directory, name)).st_size
                    except OSError:
                        continue
        display.set_total(total)

    thread = threading.Thread(target=scan, name="scan", daemon=True)
    thread.start()
    return thread
