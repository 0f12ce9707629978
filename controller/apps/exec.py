"""Commands run inside containers (docker exec), streaming: a dump is read from a
command's stdout as it is produced, a restore is written to a command's stdin, and
nothing lands in a temporary file. Secrets travel in the exec environment, never argv."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docker import DockerClient
from docker.utils.socket import frames_iter

from controller.apps.docker_api import docker_errors

_STDOUT, _STDERR = 1, 2
_STDERR_KEPT = 4096  # the tail of a tool's stderr kept for error messages


@dataclass(frozen=True)
class ExecCommand:
    argv: list[str]
    environment: dict[str, str] = field(default_factory=dict, repr=False)  # may hold passwords
    user: str = ""

    def shown(self) -> str:
        """The command for messages: the tool and its arguments, never the environment (which
        may hold secrets) and never the inner script of `sh -c SCRIPT NAME ARGS...`."""
        argv = self.argv
        while argv[:2] == ["sh", "-c"] and len(argv) > 3:
            name, rest = argv[3], argv[4:]  # $0, then "$@"
            argv = rest if rest[:2] == ["sh", "-c"] else [name, *rest]  # a wrapper's "$@" is the next command
        return " ".join(argv)


def failure_message(what: str, stderr: str, where: str) -> str:
    """One line that leads with the cause: the tool's own last error line, then what
    failed and where ("Access denied for user 'root' (mysqldump exited with 2 in wp-db-1)")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return f"{lines[-1]} ({what} in {where})" if lines else f"{what} in {where}"


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: str


class _StderrTail:
    def __init__(self) -> None:
        self._data = b""

    def add(self, chunk: bytes) -> None:
        self._data = (self._data + chunk)[-_STDERR_KEPT:]

    def text(self) -> str:
        return self._data.decode("utf-8", "replace").strip()


def _create(client: DockerClient, container_id: str, command: ExecCommand, stdin: bool) -> str:
    with docker_errors(f"starting {command.argv[0]} in container {container_id[:12]}"):
        created: dict[str, Any] = client.api.exec_create(
            container_id,
            command.argv,
            stdout=True,
            stderr=True,
            stdin=stdin,
            environment=command.environment,
            user=command.user,
        )
    return str(created["Id"])


def _exit_code(client: DockerClient, exec_id: str) -> int:
    with docker_errors("reading an exec's exit code"):
        code = client.api.exec_inspect(exec_id)["ExitCode"]
    return -1 if code is None else int(code)


def run(client: DockerClient, container_id: str, command: ExecCommand, timeout: float | None = None) -> ExecResult:
    """Run to completion and collect the output (hooks, readiness probes). Past `timeout`
    seconds the command's process is killed (the controller shares the host's pid space)
    and the result has exit code 124, as timeout(1) reports."""
    exec_id = _create(client, container_id, command, stdin=False)
    out, err = bytearray(), _StderrTail()

    def collect() -> None:
        with docker_errors(f"running {command.argv[0]}"):
            for stdout_chunk, stderr_chunk in client.api.exec_start(exec_id, stream=True, demux=True):
                out.extend(stdout_chunk or b"")
                err.add(stderr_chunk or b"")

    worker = threading.Thread(target=collect, name="exec", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _kill(client, exec_id)
        worker.join(10)
        return ExecResult(124, bytes(out), f"timed out after {timeout:g} s; {err.text()}".strip("; "))
    return ExecResult(_exit_code(client, exec_id), bytes(out), err.text())


def _kill(client: DockerClient, exec_id: str) -> None:
    with docker_errors("stopping a command that timed out"):
        pid = int(client.api.exec_inspect(exec_id).get("Pid") or 0)
    if pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class OutputStream(io.RawIOBase):
    """A command's stdout as a file object, started at the first read. At the end it checks the command's outcome and
    raises `failure(message)` instead of a clean EOF when the exit code is not 0, or when
    `check_end` (given the output's last bytes) says the output is incomplete."""

    def __init__(
        self,
        client: DockerClient,
        container_id: str,
        command: ExecCommand,
        failure: type[Exception],
        check_end: Any = None,
        where: str = "",
        observe: Callable[[bytes], None] | None = None,
    ) -> None:
        """`where` names the container in messages (its id when not given); `observe` sees
        the output as it is read (counting a dump's rows on the way)."""
        self._client, self._container_id, self._command = client, container_id, command
        self._observe = observe
        self._where = where or f"container {container_id[:12]}"
        self._failure, self._check_end = failure, check_end
        self._exec_id = ""
        self._frames: Iterator[tuple[bytes | None, bytes | None]] = iter(())
        self._buffer = b""
        self._tail = b""
        self._stderr = _StderrTail()
        self.bytes_read = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def _start(self) -> None:
        """The command starts at the first read: dumps run one after another, when archived."""
        self._exec_id = _create(self._client, self._container_id, self._command, stdin=False)
        with docker_errors(f"running {self._command.argv[0]}"):
            self._frames = self._client.api.exec_start(self._exec_id, stream=True, demux=True)

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._exec_id:
            self._start()
        while not self._buffer:
            if self._finished:
                return 0
            try:
                stdout_chunk, stderr_chunk = next(self._frames)
            except StopIteration:
                self._finish()
                return 0
            self._stderr.add(stderr_chunk or b"")
            self._buffer = stdout_chunk or b""
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        if self._observe is not None:
            self._observe(self._buffer[:count])
        self._tail = (self._tail + self._buffer[:count])[-256:]
        self._buffer = self._buffer[count:]
        self.bytes_read += count
        return count

    def _finish(self) -> None:
        self._finished = True
        code = _exit_code(self._client, self._exec_id)
        tool, stderr = self._command.shown(), self._stderr.text()
        if code != 0:
            raise self._failure(failure_message(f"{tool} exited with {code}", stderr, self._where))
        if self.bytes_read == 0:
            raise self._failure(failure_message(f"{tool} produced no output", stderr, self._where))
        if self._check_end is not None and not self._check_end(self._tail):
            what = f"{tool} output ends early (no completion mark)"
            raise self._failure(failure_message(what, stderr, self._where))


@dataclass
class FeedResult:
    exit_code: int
    stderr: str
    bytes_written: int


def feed(client: DockerClient, container_id: str, command: ExecCommand, chunks: Iterable[bytes]) -> FeedResult:
    """Write `chunks` to the command's stdin, close it, and wait for the command to end.

    Output is drained by a thread while writing, so a chatty command cannot block on a full
    pipe while we block on its stdin."""
    exec_id = _create(client, container_id, command, stdin=True)
    with docker_errors(f"running {command.argv[0]}"):
        attached = client.api.exec_start(exec_id, socket=True)
    raw: socket.socket = attached._sock  # type: ignore[union-attr]
    stderr = _StderrTail()

    def drain() -> None:
        for stream, data in frames_iter(attached, tty=False):  # type: ignore[no-untyped-call]
            if stream == _STDERR:
                stderr.add(data)

    reader = threading.Thread(target=drain, name="exec-output", daemon=True)
    reader.start()
    written = 0
    try:
        for chunk in chunks:
            raw.sendall(chunk)
            written += len(chunk)
    except OSError:
        pass  # the command closed its stdin early: its exit code and stderr say why
    finally:
        # Also when `chunks` raised: the command must see the end of its input to finish.
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
        reader.join()
        attached.close()
    return FeedResult(_exit_code(client, exec_id), stderr.text(), written)
