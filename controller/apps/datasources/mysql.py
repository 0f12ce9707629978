"""MySQL and MariaDB: mysqldump / mariadb-dump with --single-transaction, routines, events
and triggers, --add-drop-database, so that loading the dump makes each database identical.

"All databases" means every database but the server's own schemas (mysql, sys,
information_schema, performance_schema): users and grants stay as the container's
environment created them, which also keeps a restore from locking its own user out.
The tool is whichever the image has (MariaDB 11 images have no mysqldump)."""

from __future__ import annotations

from collections.abc import Iterable

from controller.apps.datasources.base import Credentials
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


class MySQL:
    dump_suffix = "sql"

    def __init__(self, engine: str) -> None:
        self.engine = engine  # "mysql" or "mariadb": the same tools and format

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        for variable in ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"):
            if environment.get(variable):
                return Credentials("root", environment[variable])
        for prefix in ("MARIADB", "MYSQL"):
            if environment.get(f"{prefix}_USER") and environment.get(f"{prefix}_PASSWORD"):
                return Credentials(environment[f"{prefix}_USER"], environment[f"{prefix}_PASSWORD"])
        return None

    @staticmethod
    def _environment(credentials: Credentials) -> dict[str, str]:
        environment = {"LIFEBOAT_DB_USER": credentials.username}
        if credentials.password:
            environment["MYSQL_PWD"] = credentials.password  # read by both clients; never argv
        return environment

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        return ExecCommand(["sh", "-c", _dump_script(), "mysqldump", *names], self._environment(credentials))

    def dump_is_complete(self, tail: bytes) -> bool:
        last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return last_line.startswith(_DONE)

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        return ExecCommand(["sh", "-c", _RESTORE_SCRIPT, "mysql"], self._environment(credentials))

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        return dump

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        return ExecCommand(["sh", "-c", _READY_SCRIPT, "mysqladmin"], self._environment(credentials))
