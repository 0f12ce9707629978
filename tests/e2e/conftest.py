"""Run the installed `lifeboat` command as a process, isolated in a temp home."""

from __future__ import annotations

import contextlib
import os
import pty
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

    def on_terminal(self, *args: str, answers: list[tuple[str, str]]) -> Result:
        """Run with a pseudo-terminal as stdin, stdout and stderr: each (prompt, reply) is
        answered when the prompt appears. `out` is everything the terminal showed."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
            os.execve(LIFEBOAT, [LIFEBOAT, *args], self.env())
        shown = b""
        pending = list(answers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and shown.rstrip().endswith(pending[0][0].encode()):
                os.write(fd, pending.pop(0)[1].encode() + b"\n")
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        return Result(os.waitstatus_to_exitcode(status), shown.decode(errors="replace"), "")

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
