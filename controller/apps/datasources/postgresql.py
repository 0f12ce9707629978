"""PostgreSQL: pg_dumpall (or pg_dump per database) in plain SQL with --clean --if-exists,
so that loading the dump with psql makes the cluster's databases identical to the dump.

The dump drops and recreates every role; the role the restore connects as cannot drop
itself, so its two statements are left out of the restore input (it exists already)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from controller.apps.datasources.base import Credentials, from_environment, with_password
from controller.apps.datasources.inventory import DumpCounter, Inventory, LineCounter, ServerInventory
from controller.apps.exec import ExecCommand

_DUMP_ALL_DONE = b"-- PostgreSQL database cluster dump complete"
_DUMP_ONE_DONE = b"-- PostgreSQL database dump complete"
# pg_dump once per named database, stopping at the first failure.
_DUMP_EACH = 'for db in "$@"; do pg_dump --clean --if-exists --create --no-password "$db" || exit $?; done'


def _command(argv: list[str], credentials: Credentials) -> ExecCommand:
    return with_password(ExecCommand(argv, {"PGUSER": credentials.username}), credentials, "PGPASSWORD")


_CONNECT = re.compile(rb"^\\connect (?:-reuse-previous=on )?(.+)$")
_NAME = rb'((?:"(?:[^"]|"")*"|[^\s"(])+)'  # schema.table, parts quoted when they need it
_CREATE_TABLE = re.compile(rb"^CREATE (?:UNLOGGED )?TABLE (?:ONLY )?" + _NAME + rb" \($")
_COPY = re.compile(rb"^COPY " + _NAME + rb" (?:\(.*\) )?FROM stdin;$")
_COUNT_EACH = (
    'psql --no-psqlrc -At -d "$1" -c "SELECT format(\'SELECT %L || chr(9) || count(*) FROM %I.%I;\', '
    "schemaname || '.' || tablename, schemaname, tablename) FROM pg_tables "
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')\" | psql --no-psqlrc -At -d \"$1\""
)


def _unquoted(name: bytes) -> str:
    """As pg_tables names it: quotes gone, a doubled quote one."""
    return re.sub(r'"("?)', r"\1", name.decode("utf-8", "replace"))


class PostgresDumpCounter:
    """Tables and rows of a plain pg_dump/pg_dumpall script: `\\connect` names the database,
    CREATE TABLE a table, and a COPY block holds one row per line up to `\\.`."""

    def __init__(self) -> None:
        self._lines = LineCounter()
        self._database = "postgres"
        self._copying: str | None = None

    def feed(self, chunk: bytes) -> None:
        lines, index = self._lines.split(chunk), 0
        while index < len(lines):
            if self._copying is not None:
                try:
                    end = lines.index(b"\\.", index)
                except ValueError:
                    self._lines.add_rows(self._database, self._copying, len(lines) - index)
                    return
                self._lines.add_rows(self._database, self._copying, end - index)
                self._copying, index = None, end + 1
                continue
            self._statement(lines[index])
            index += 1

    def _statement(self, line: bytes) -> None:
        if (found := _CONNECT.match(line)) is not None:
            target = found.group(1).decode("utf-8", "replace").strip('"')
            self._database = target.split("dbname='", 1)[1].rstrip("'") if "dbname='" in target else target
            self._lines.database(self._database)
        elif (found := _CREATE_TABLE.match(line)) is not None:
            self._lines.table(self._database, _unquoted(found.group(1)))
        elif (found := _COPY.match(line)) is not None:
            self._copying = _unquoted(found.group(1))
            self._lines.table(self._database, self._copying)

    def inventory(self) -> Inventory:
        return self._lines.found


class PostgresInventory:
    system_databases = frozenset({"template0", "template1", "postgres"})

    def dump_counter(self) -> DumpCounter:
        return PostgresDumpCounter()

    def databases_command(self, credentials: Credentials) -> ExecCommand:
        query = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
        return _command(["psql", "--no-psqlrc", "-At", "-d", "postgres", "-c", query], credentials)

    def count_command(self, credentials: Credentials, database: str) -> ExecCommand:
        return _command(["sh", "-c", _COUNT_EACH, "psql", database], credentials)

    def query_command(self, credentials: Credentials, database: str, query: str) -> ExecCommand:
        argv = ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-d", database, "-c", query]
        return _command(argv, credentials)

    def drop_command(self, credentials: Credentials, database: str) -> ExecCommand:
        script = 'printf \'DROP DATABASE :"name";\\n\' | psql --no-psqlrc -v ON_ERROR_STOP=1 -v name="$1" -d postgres'
        return _command(["sh", "-c", script, "psql", database], credentials)


class PostgreSQL:
    engine = "postgresql"
    dump_suffix = "sql"
    inventory: ServerInventory | None = PostgresInventory()

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        """POSTGRES_USER (default postgres) and POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE."""
        password, file = from_environment(environment, "POSTGRES_PASSWORD")
        return Credentials(environment.get("POSTGRES_USER") or "postgres", password, file)

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        if names:
            return _command(["sh", "-c", _DUMP_EACH, "pg_dump", *names], credentials)
        return _command(["pg_dumpall", "--clean", "--if-exists", "--no-password"], credentials)

    def dump_is_complete(self, tail: bytes) -> bool:
        text = tail.rstrip(b"\n-").rstrip()
        return text.endswith(_DUMP_ALL_DONE) or text.endswith(_DUMP_ONE_DONE)

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        argv = ["psql", "--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname", "postgres"]
        return _command(argv, credentials)

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        role = re.escape(credentials.username.encode())
        own_role = re.compile(rb"^(DROP ROLE IF EXISTS|CREATE ROLE) (" + role + rb'|"' + role + rb'");\n', re.M)
        return _filter_lines(dump, own_role)

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        return _command(["pg_isready", "--quiet", "--dbname", "postgres"], credentials)


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
