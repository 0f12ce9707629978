"""The check of a restored database, before a restore may say Succeeded: every database the
backup's dump held has the same tables with the same rows (the dump's own counts, recorded
at backup time), and databases the server holds that the dump did not are named, or dropped
when the restore asks for exact databases."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.apps.database_load import drop_database, server_databases, table_counts
from controller.apps.datasources.inventory import Inventory
from controller.apps.discovery import Database
from controller.apps.docker_api import DockerClient
from controller.errors import RestoreFailed


@dataclass
class DatabaseCheck:
    databases: int = 0
    tables: int = 0
    rows: int = 0
    extra: list[str] = field(default_factory=list)  # in the server, not in the backup: left alone
    dropped: list[str] = field(default_factory=list)  # ... and removed (exactDatabases)

    def describe(self) -> str:
        said = f"verified {self.tables} tables ({self.rows} rows) in {self.databases} database(s)"
        if self.extra:
            said += f"; databases not in the backup were left: {', '.join(self.extra)} (exactDatabases removes them)"
        if self.dropped:
            said += f"; databases not in the backup were removed: {', '.join(self.dropped)}"
        return said


def check_database(
    client: DockerClient, database: Database, dump: str, recorded: Inventory, exact: bool, check: DatabaseCheck
) -> None:
    """Compare the server with what the dump held; raises RestoreFailed naming the first
    differences. Adds what was verified to `check`."""
    differences = []
    for name, tables in sorted(recorded.items()):
        found = table_counts(client, database, name)
        for table, rows in sorted(tables.items()):
            if found.get(table) != rows:
                now = "missing" if table not in found else f"{found[table]} rows"
                differences.append(f"{name}.{table}: {now}, the backup {rows}")
        differences += [f"{name}.{table}: not in the backup" for table in sorted(set(found) - set(tables))]
        check.databases, check.tables, check.rows = (
            check.databases + 1,
            check.tables + len(tables),
            check.rows + sum(tables.values()),
        )
    if differences:
        raise RestoreFailed(f"{dump} differs from the backup after the import: {'; '.join(differences[:5])}")
    assert database.source.inventory is not None  # a recorded inventory comes from a counted engine
    system = database.source.inventory.system_databases
    extra = sorted(server_databases(client, database) - set(recorded) - system)
    for name in extra if exact else []:
        drop_database(client, database, name)
    (check.dropped if exact else check.extra).extend(extra)
