"""Run the installed `lifeboat` command as a process, isolated in a temp home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


@pytest.fixture
def lifeboat(tmp_path: Path) -> Lifeboat:
    return Lifeboat(tmp_path)
