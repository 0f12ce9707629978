"""What this test process has open, as the kernel sees it."""

from __future__ import annotations

import os
from pathlib import Path


def open_files_under(folder: Path) -> list[str]:
    """This process's open files in `folder`, as /proc names them (an unlinked one ends in " (deleted)")."""
    links = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    return [link for link in links if link.startswith(f"{folder}/")]
