"""The README's quickstart, followed to the letter: `make run`'s script starts the controller
on the quickstart examples, the first backup is taken at the next full minute, a second
policy backs up to the same storage, and the README's second-terminal block (extracted
from README.md, run as written by bash) lists the backups, loses the data, restores it
and asks the API."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LIFEBOAT

ROOT = Path(__file__).resolve().parents[2]
DEMO = Path("/tmp/lifeboat-quickstart")  # the README's path, as written


def second_terminal_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index("To see a backup and a restore") :]
    found = re.search(r"```sh\n(.*?)```", after, re.S)
    assert found is not None, "the README's quickstart lost its second-terminal block"
    return found.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Path]:
    """A folder laid out as the checkout is for `make run` (examples/ beside .lifeboat/), with
    any quickstart demo of the person running the suite kept aside meanwhile."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    kept = DEMO.with_name("lifeboat-quickstart.kept-by-tests")
    if DEMO.exists():
        DEMO.rename(kept)
    yield tmp_path
    shutil.rmtree(DEMO, ignore_errors=True)
    if kept.exists():
        kept.rename(DEMO)


def test_the_readme_quickstart_as_written(checkout: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFEBOAT_", "BACKUP_"))}
    env.update(HOME=str(checkout), LIFEBOAT=LIFEBOAT, LIFEBOAT_API_LISTEN=f"127.0.0.1:{free_port()}")
    run = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "quickstart.sh")], cwd=checkout, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 150  # the next full minute, and the backup
        environment = (checkout / ".lifeboat" / "env").read_text() if (checkout / ".lifeboat" / "env").exists() else ""
        while time.monotonic() < deadline and run.poll() is None:
            listed = subprocess.run(
                ["bash", "-c", ". .lifeboat/env && lifeboat get backups --status completed"],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
            )
            if listed.returncode == 0 and "quickstart-files" in listed.stdout:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"no completed quickstart backup: {run.poll()} {environment}")
        backed_up = (DEMO / "data" / "hello.txt").read_text()
        # Another policy backs up to the same storage after it: the README's `latest --path`
        # must still find the quickstart's folder, not the newest snapshot of the repository.
        other = checkout / "other-data"
        other.mkdir()
        (other / "notes.txt").write_text("not the quickstart's\n")
        (checkout / "other.yaml").write_text(
            "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: other-files}\n"
            f"spec:\n  paths: [{other}]\n  storage: quickstart\n  retention: {{keepLast: 1}}\n"
        )
        second = subprocess.run(
            [
                "bash",
                "-e",
                "-c",
                ". .lifeboat/env && lifeboat apply -f other.yaml && lifeboat backup --policy other-files",
            ],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 0, second.stderr

        block = subprocess.run(
            ["bash", "-e", "-c", second_terminal_block()], cwd=checkout, env=env, capture_output=True, text=True
        )

        assert block.returncode == 0, block.stderr
        assert backed_up.startswith("hello from the Lifeboat quickstart") and backed_up in block.stdout
        assert (DEMO / "data" / "hello.txt").read_text() == backed_up  # back as it was backed up
        assert '"code":200' in block.stdout.replace(" ", "")  # the API answered with the backups
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
