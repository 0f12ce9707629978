"""What every database engine module provides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from controller.apps.datasources.inventory import ServerInventory
from controller.apps.exec import ExecCommand


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None  # a path inside the container (Docker secrets: the *_FILE variables)


# Sets the variable named by $LIFEBOAT_PASSWORD_VARIABLE from the file $LIFEBOAT_PASSWORD_FILE,
# inside the container where the secret is mounted, then runs "$@": the password is never
# read out of the container, never in argv.
_FROM_PASSWORD_FILE = (
    'password=$(cat "$LIFEBOAT_PASSWORD_FILE") || exit 1; '
    'export "$LIFEBOAT_PASSWORD_VARIABLE=$password"; unset password; exec "$@"'
)


def with_password(command: ExecCommand, credentials: Credentials, variable: str) -> ExecCommand:
    """`command` with the password in the environment variable the tool reads (`variable`):
    the value itself, or read from `credentials.password_file` inside the container."""
    if credentials.password_file:
        environment = {
            **command.environment,
            "LIFEBOAT_PASSWORD_FILE": credentials.password_file,
            "LIFEBOAT_PASSWORD_VARIABLE": variable,
        }
        tool = command.shown().split(" ", 1)[0]
        return ExecCommand(["sh", "-c", _FROM_PASSWORD_FILE, tool, *command.argv], environment, command.user)
    if credentials.password:
        return ExecCommand(command.argv, {**command.environment, variable: credentials.password}, command.user)
    return command


def from_environment(environment: dict[str, str], variable: str) -> tuple[str | None, str | None]:
    """(value, file) of an official image's variable: VARIABLE itself, or VARIABLE_FILE (the
    path of a Docker secret inside the container, read only there)."""
    return environment.get(variable) or None, environment.get(f"{variable}_FILE") or None


class DataSource(Protocol):
    engine: str
    dump_suffix: str  # the dump's file name suffix in the snapshot: "sql", "archive"
    inventory: ServerInventory | None  # counting tables and rows; None: loaded, not verified

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
