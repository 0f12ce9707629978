"""Progress on a terminal (rich), silence otherwise, so that piped output stays parseable."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from controller.cli.render import human_bytes


@contextmanager
def byte_progress(label: str, total: int | None, enabled: bool) -> Iterator[Callable[[int, int, str], None]]:
    """Yield update(bytes_done, files_done, current) — a no-op unless stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, files, current: None
        return
    console = Console(stderr=True)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[files]} files"),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total, files=0)
        last = 0.0

        def update(done: int, files: int, current: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                progress.update(task, completed=done, files=files, description=f"{label} {current[-40:]}")

        yield update
    console.print(f"{label}: {human_bytes(total) if total else 'done'}", highlight=False)
