"""Typing for the native directory scanner (_dirscan.c)."""

import os

def scan_directory(
    path: str, inline_limit: int, budget: int, /
) -> list[tuple[str, os.stat_result | None, int, bool, bytes | None]]: ...
