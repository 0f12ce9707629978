"""What every database engine module provides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from controller.apps.exec import ExecCommand


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)


class DataSource(Protocol):
    engine: str
    dump_suffix: str  # the dump's file name suffix in the snapshot: "sql", "archive"

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        """Credentials from the container's standard variables; None when they are not there."""
        ...

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        """Writes the dump of `names` (all databases when empty) to stdout."""
        ...

    def dump_is_complete(self, tail: bytes) -> bool:
        """Whether the dump's last bytes carry the tool's completion mark."""
        ...

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        """Reads a dump made by dump_command on stdin and applies it, replacing what is there."""
        ...

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        """The dump as the restore command must read it (engines may drop a statement or two)."""
        ...

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        """Exits 0 once the server accepts connections."""
        ...
