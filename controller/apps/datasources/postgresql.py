"""PostgreSQL: pg_dumpall (or pg_dump per database) in plain SQL with --clean --if-exists,
so that loading the dump with psql makes the cluster's databases identical to the dump.

The dump drops and recreates every role; the role the restore connects as cannot drop
itself, so its two statements are left out of the restore input (it exists already)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from controller.apps.datasources.base import Credentials
from controller.apps.exec import ExecCommand

_DUMP_ALL_DONE = b"-- PostgreSQL database cluster dump complete"
_DUMP_ONE_DONE = b"-- PostgreSQL database dump complete"
# pg_dump once per named database, stopping at the first failure.
_DUMP_EACH = 'for db in "$@"; do pg_dump --clean --if-exists --create --no-password "$db" || exit $?; done'


def _environment(credentials: Credentials) -> dict[str, str]:
    environment = {"PGUSER": credentials.username}
    if credentials.password:
        environment["PGPASSWORD"] = credentials.password
    return environment


class PostgreSQL:
    engine = "postgresql"
    dump_suffix = "sql"

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        return Credentials(environment.get("POSTGRES_USER") or "postgres", environment.get("POSTGRES_PASSWORD"))

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        if names:
            return ExecCommand(["sh", "-c", _DUMP_EACH, "pg_dump", *names], _environment(credentials))
        return ExecCommand(["pg_dumpall", "--clean", "--if-exists", "--no-password"], _environment(credentials))

    def dump_is_complete(self, tail: bytes) -> bool:
        text = tail.rstrip(b"\n-").rstrip()
        return text.endswith(_DUMP_ALL_DONE) or text.endswith(_DUMP_ONE_DONE)

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        argv = ["psql", "--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname", "postgres"]
        return ExecCommand(argv, _environment(credentials))

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        role = re.escape(credentials.username.encode())
        own_role = re.compile(rb"^(DROP ROLE IF EXISTS|CREATE ROLE) (" + role + rb'|"' + role + rb'");\n', re.M)
        return _filter_lines(dump, own_role)

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        return ExecCommand(["pg_isready", "--quiet", "--dbname", "postgres"], _environment(credentials))


def _filter_lines(chunks: Iterable[bytes], drop: re.Pattern[bytes]) -> Iterator[bytes]:
    """Chunks with whole lines matching `drop` removed; lines cut between chunks are joined first."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield drop.sub(b"", pending[:cut])
            pending = pending[cut:]
    if pending:
        yield pending  # a last line without a newline is no statement of ours
