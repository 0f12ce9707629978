"""Run the installed `lifeboat` command as a process, isolated in a temp home."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LIFEBOAT = shutil.which("lifeboat", path=str(Path(sys.executable).parent)) or "lifeboat"


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Lifeboat:
    home: Path

    @property
    def resources(self) -> Path:
        return self.home / "resources"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEBOAT_")}
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / "data"),
            LIFEBOAT_RESOURCES=str(self.resources),
            LIFEBOAT_CATALOG=f"sqlite:///{self.home / 'catalog.db'}",
            LIFEBOAT_API_LISTEN="127.0.0.1:0",  # a controller's API on any free port
        )
        return env

    def __call__(self, *args: str) -> Result:
        done = subprocess.run([LIFEBOAT, *args], capture_output=True, text=True, env=self.env(), timeout=120)
        return Result(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def api_process(lifeboat: Lifeboat, log: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`lifeboat api` as a process on a free port, JSON logs into `log`: (process, its URL).
    Stopped with SIGTERM at the end."""
    with log.open("w") as sink:
        process = subprocess.Popen(
            [LIFEBOAT, "api", "--listen", "127.0.0.1:0", "--log-format", "json"],
            env=lifeboat.env(),
            stderr=sink,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"API on (http://[0-9.:]+)", log.read_text())
            if found:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the API did not start: {log.read_text()}")
        yield process, found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


@pytest.fixture
def lifeboat(tmp_path: Path) -> Lifeboat:
    return Lifeboat(tmp_path)
