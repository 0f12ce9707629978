"""MongoDB: mongodump --archive to stdout, mongorestore --archive --drop from stdin.

The tools take a password only in argv or in a --config file, so a tiny shell wrapper
writes the password from the exec environment into a private file inside the container,
passes --config, and removes the file: the password is never in argv."""

from __future__ import annotations

from collections.abc import Iterable

from controller.apps.datasources.base import Credentials, from_environment, with_password
from controller.apps.datasources.inventory import ServerInventory
from controller.apps.exec import ExecCommand

# "$@" is the tool and its arguments; LIFEBOAT_DB_PASSWORD, when set, becomes a --config
# file (YAML, single-quoted: a quote inside is doubled).
_WITH_PASSWORD_FILE = r"""
if [ -n "${LIFEBOAT_DB_PASSWORD:-}" ]; then
    umask 077
    config=$(mktemp)
    trap 'rm -f "$config"' EXIT
    printf "password: '%s'\n" "$(printf '%s' "$LIFEBOAT_DB_PASSWORD" | sed "s/'/''/g")" >"$config"
    set -- "$@" --config="$config"
fi
"$@"
"""
_PING = (
    "shell=$(command -v mongosh || command -v mongo) || exit 127; "
    'exec "$shell" --quiet --eval "db.adminCommand(\'ping\').ok"'
)


class MongoDB:
    engine = "mongodb"
    dump_suffix = "archive"
    inventory: ServerInventory | None = None  # the archive format is not parsed: loaded, not verified

    def credentials_from(self, environment: dict[str, str]) -> Credentials | None:
        username = environment.get("MONGO_INITDB_ROOT_USERNAME")
        if not username:
            return Credentials("", None)  # a server without authentication
        password, file = from_environment(environment, "MONGO_INITDB_ROOT_PASSWORD")
        return Credentials(username, password, file)

    @staticmethod
    def _wrapped(tool: list[str], credentials: Credentials) -> ExecCommand:
        argv = list(tool)
        if credentials.username:
            argv += [f"--username={credentials.username}", "--authenticationDatabase=admin"]
        command = ExecCommand(["sh", "-c", _WITH_PASSWORD_FILE, tool[0], *argv])
        return with_password(command, credentials, "LIFEBOAT_DB_PASSWORD")

    def dump_command(self, credentials: Credentials, names: list[str]) -> ExecCommand:
        tool = ["mongodump", "--archive", "--quiet"]
        if len(names) == 1:
            tool.append(f"--db={names[0]}")
        elif names:
            raise ValueError("mongodump dumps one database or all of them; list one name or none")
        return self._wrapped(tool, credentials)

    def dump_is_complete(self, tail: bytes) -> bool:
        # An archive ends with a terminator block of four 0xFF bytes after its last collection.
        return tail.endswith(b"\xff\xff\xff\xff")

    def restore_command(self, credentials: Credentials) -> ExecCommand:
        return self._wrapped(["mongorestore", "--archive", "--drop", "--quiet"], credentials)

    def restore_input(self, credentials: Credentials, dump: Iterable[bytes]) -> Iterable[bytes]:
        return dump

    def ready_command(self, credentials: Credentials) -> ExecCommand:
        return ExecCommand(["sh", "-c", _PING, "mongo-ping"])
