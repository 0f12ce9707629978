"""What a dump holds and what a server holds, per database: its tables and their rows.

A backup counts them from the dump itself as it streams into the repository (so the counts
are the dump's, whatever the app wrote meanwhile); a restore counts them in the server after
the import, and the two must agree. Each engine module provides the parsing of its dump
format (DumpCounter) and the commands that list a server's databases and count a
database's rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from controller.apps.datasources.base import Credentials
    from controller.apps.exec import ExecCommand

Inventory = dict[str, dict[str, int]]  # database → table → rows


class DumpCounter(Protocol):
    def feed(self, chunk: bytes) -> None:
        """The dump's next bytes, in order."""
        ...

    def inventory(self) -> Inventory: ...


@dataclass
class LineCounter:
    """Splits a stream into lines for a line-based DumpCounter; `line` sees each whole line
    (without its newline), `lines` may take a run of lines at once (a COPY block)."""

    pending: bytes = b""
    found: Inventory = field(default_factory=dict)

    def split(self, chunk: bytes) -> list[bytes]:
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()
        return lines

    def database(self, database: str) -> None:
        self.found.setdefault(database, {})

    def table(self, database: str, table: str) -> None:
        self.found.setdefault(database, {}).setdefault(table, 0)

    def add_rows(self, database: str, table: str, rows: int) -> None:
        tables = self.found.setdefault(database, {})
        tables[table] = tables.get(table, 0) + rows


class ServerInventory(Protocol):
    """How one engine's server and dump are counted (absent for engines whose dump format
    Lifeboat does not parse: their databases are loaded, not verified)."""

    system_databases: frozenset[str]  # never "extra": the server's own

    def dump_counter(self) -> DumpCounter: ...

    def databases_command(self, credentials: Credentials) -> ExecCommand:
        """Prints the server's databases, one per line."""
        ...

    def count_command(self, credentials: Credentials, database: str) -> ExecCommand:
        """Prints "TABLE<TAB>ROWS" per table of `database`, exact counts."""
        ...

    def drop_command(self, credentials: Credentials, database: str) -> ExecCommand: ...

    def query_command(self, credentials: Credentials, database: str, query: str) -> ExecCommand:
        """Prints the query's rows in `database`, values tab-separated, no header (drills)."""
        ...


def parse_counts(output: str) -> dict[str, int]:
    """Lines "TABLE<TAB or |>ROWS", as the inventory commands print them."""
    counts = {}
    for line in output.splitlines():
        name, sep, rows = line.replace("|", "\t").rpartition("\t")
        if sep and rows.strip().isdigit():
            counts[name] = int(rows)
    return counts
