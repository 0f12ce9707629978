"""MySQL and MariaDB: mysqldump / mariadb-dump with --single-transaction, routines, events
and triggers, --add-drop-database, so that loading the dump makes each database identical.

"All databases" means every database but the server's own schemas (mysql, sys,
information_schema, performance_schema): users and grants stay as the container's
environment created them, which also keeps a restore from locking its own user out.
The tool is whichever the image has (MariaDB 11 images have no mysqldump)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from controller.apps.datasources.base import Credentials, from_environment, with_password
from controller.apps.datasources.inventory import DumpCounter, Inventory, LineCounter, ServerInventory
from controller.apps.exec import ExecCommand

_DONE = b"-- Dump completed"
_SYSTEM = ("information_schema", "performance_schema", "sys", "mysql")
_PICK_TOOLS = (
    'dump=$(command -v mariadb-dump || command -v mysqldump) || { echo "no mysqldump in the image" >&2; exit 127; }; '
    'client=$(command -v mariadb || command -v mysql) || { echo "no mysql client in the image" >&2; exit 127; }; '
)


def _dump_script() -> str:
    excluded = " ".join(f"-e {name}" for name in _SYSTEM)
    return (
        "set -e; "
        + _PICK_TOOLS
        + 'if [ "$#" -eq 0 ]; then '
        + 'listed=$("$client" --user="$LIFEBOAT_DB_USER" --batch --skip-column-names -e "SHOW DATABASES"); '
        + f'set -- $(printf "%s\\n" "$listed" | grep -v -x {excluded} || true); '
        + 'if [ "$#" -eq 0 ]; then echo "no database to dump besides the system schemas" >&2; exit 3; fi; '
        + "fi; "
        + 'exec "$dump" --user="$LIFEBOAT_DB_USER" --single-transaction --routines --events --triggers '
        + '--add-drop-database --hex-blob --databases "$@"'
    )


_RESTORE_SCRIPT = _PICK_TOOLS + 'exec "$client" --user="$LIFEBOAT_DB_USER" --binary-mode'
_READY_SCRIPT = (
    "admin=$(command -v mariadb-admin || command -v mysqladmin) || exit 127; "
    'exec "$admin" --user="$LIFEBOAT_DB_USER" ping'
)


_USE = re.compile(rb"^USE `((?:[^`]|``)+)`;")
_CREATE_TABLE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)+)` \($")
_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` (?:\([^)]*\) )?VALUES ?")
_STRING = re.compile(rb"'(?:[^'\\]|\\.)*'")  # mysqldump escapes quotes with a backslash
# "$1" is the database, "$2" a query printing one "SELECT 'table', COUNT(*) FROM `table`;" per
# table; its output runs in the database. (SQL travels in argv: no shell quoting of backticks.)
_COUNT_EACH = (
    _PICK_TOOLS + '"$client" --user="$LIFEBOAT_DB_USER" -N "$1" -e "$2" | "$client" --user="$LIFEBOAT_DB_USER" -N "$1"'
)
_COUNT_QUERY = (
    "SELECT CONCAT('SELECT ', QUOTE(table_name), ', COUNT(*) FROM `', REPLACE(table_name, '`', '``'), '`;') "
    "FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
)
_RUN = _PICK_TOOLS + 'exec "$client" --user="$LIFEBOAT_DB_USER" -N -e "$1"'
_QUERY = _PICK_TOOLS + 'exec "$client" --user="$LIFEBOAT_DB_USER" -N -B "$1" -e "$2"'


def _name(found: re.Match[bytes]) -> str:
    return found.group(1).replace(b"``", b"`").decode("utf-8", "replace")


class MySQLDumpCounter:
    """Tables and rows of a mysqldump script: `USE` names the database, CREATE TABLE a table,
    and an INSERT holds one parenthesised tuple per row, all on its line (mysqldump) or one
    per line (mariadb-dump 10.11 and later) until the `);` that ends it. Strings are blanked
    first: a "),(" inside one is data."""

    def __init__(self) -> None:
        self._lines = LineCounter()
        self._database = ""
        self._inserting: str | None = None  # the table of the INSERT being read

    def feed(self, chunk: bytes) -> None:
        for line in self._lines.split(chunk):
            if self._inserting is not None:
                self._values(line)
            elif (found := _INSERT.match(line)) is not None:
                self._inserting = _name(found)
                self._values(line[found.end() :])
            elif (found := _CREATE_TABLE.match(line)) is not None:
                self._lines.table(self._database, _name(found))
            elif (found := _USE.match(line)) is not None:
                self._database = _name(found)
                self._lines.database(self._database)

    def _values(self, piece: bytes) -> None:
        assert self._inserting is not None
        values = _STRING.sub(b"''", piece).rstrip()
        ends = values.endswith((b"),", b");"))
        self._lines.add_rows(self._database, self._inserting, values.count(b"),(") + (1 if ends else 0))
        if values.endswith(b";"):
            self._inserting = None

    def inventory(self) -> Inventory:
        return self._lines.found


class MySQLInventory:
    system_databases = frozenset(_SYSTEM)

    def dump_counter(self) -> DumpCounter:
        return MySQLDumpCounter()

    def databases_command(self, credentials: Credentials) -> ExecCommand:
        return MySQL.command(["sh", "-c", _RUN, "mysql", "SHOW DATABASES"], credentials)

    def count_command(self, credentials: Credentials, database: str) -> ExecCommand:
        return MySQL.command(["sh", "-c", _COUNT_EACH, "mysql", database, _COUNT_QUERY], credentials)

    def query_command(self, credentials: Credentials, database: str, query: str) -> ExecCommand:
        return MySQL.command(["sh", "-c", _QUERY, "mysql", database, query], credentials)

    def drop_command(self, credentials: Credentials, database: str) -> ExecCommand:
        drop = f"DROP DATABASE `{database.replace('`', '``')}`"
        return MySQL.command(["sh", "-c", _RUN, "mysql", drop], credentials)


class MySQL:
    dump_suffix = "sql"

    inventory: ServerInventory | None = MySQLInventory()

    def __init__(self, engine: str) -> None:
        self.engine = engine  # "mysql" or "mariadb": the same tools and format

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        """root with the root password, else the image's user (as the official images define
        them); each password may be a *_FILE variable naming a Docker secret."""
        for variable in ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"):
            password, file = from_environment(environment, variable)
            if password or file:
                return Credentials("root", password, file)
        for prefix in ("MARIADB", "MYSQL"):
            user = environment.get(f"{prefix}_USER")
            password, file = from_environment(environment, f"{prefix}_PASSWORD")
            if user and (password or file):
                return Credentials(user, password, file)
        return None

    @staticmethod
    def command(argv: list[str], credentials: Credentials) -> ExecCommand:
        # MYSQL_PWD is read by both clients: the password is never in argv.
        return with_password(ExecCommand(argv, {"LIFEBOAT_DB_USER": credentials.username}), credentials, "MYSQL_PWD")

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        return self.command(["sh", "-c", _dump_script(), "mysqldump", *names], credentials)

    def dump_is_complete(self, tail: bytes) -> bool:
        last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return last_line.startswith(_DONE)

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        return self.command(["sh", "-c", _RESTORE_SCRIPT, "mysql"], credentials)

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        return dump

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        return self.command(["sh", "-c", _READY_SCRIPT, "mysqladmin"], credentials)
