"""A restored database is checked against what its dump held: the backup counts each
database's tables and rows from the dump itself, the restore counts them in the server after
the import, and they must agree. A database the backup did not hold is named (or dropped
with exactDatabases), never silently kept. On MariaDB and PostgreSQL, each in its container."""

from __future__ import annotations

from pathlib import Path

from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import ItemKind
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest
from controller.repository.repository import Repository
from controller.resources.restore import RestorePhase
from tests.support.docker_apps import TestApp, mariadb_sql, postgres_app, postgres_sql, wordpress_like
from tests.support.runs import back_up, restore


def dump_item(catalog: Catalog, backup_id: str) -> tuple[int, int]:
    (dump,) = [i for i in catalog.items_of(backup_id) if i.kind == ItemKind.DUMP]
    return dump.tables, dump.rows


def test_mariadb_tables_and_rows_are_checked_and_an_intruder_database_is_named_then_dropped(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    mariadb_sql(
        app,
        "CREATE TABLE wp_posts (id INT PRIMARY KEY, title TEXT); "
        "INSERT INTO wp_posts VALUES (1, 'it''s (1),(2)'), (2, NULL), (3, 'three');"
        "CREATE TABLE wp_options (name VARCHAR(64) PRIMARY KEY);",
    )
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="test"), docker_client).backup_id
    assert dump_item(catalog, backup_id) == (2, 3)
    mariadb_sql(app, "DELETE FROM wp_posts; CREATE DATABASE intruder; CREATE TABLE intruder.t (a INT)")

    kept = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert kept.phase == RestorePhase.SUCCEEDED.value, kept.message
    assert "verified 2 tables (3 rows) in 2 database(s)" in kept.message  # wordpress, and the image's `test`
    assert "databases not in the backup were left: intruder (exactDatabases removes them)" in kept.message
    assert mariadb_sql(app, "SELECT COUNT(*) FROM wp_posts") == "3\n"
    assert "intruder" in mariadb_sql(app, "SHOW DATABASES")

    exact = restore(catalog, repository, RestoreRequest(backup_id, exact_databases=True), docker_client)

    assert exact.phase == RestorePhase.SUCCEEDED.value, exact.message
    assert "databases not in the backup were removed: intruder" in exact.message
    assert "intruder" not in mariadb_sql(app, "SHOW DATABASES")


def test_postgresql_tables_and_rows_are_checked_and_an_intruder_database_is_named(
    tmp_path: Path, docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = postgres_app(docker_client, tmp_path / "shop-config")
    made_apps.append(app)
    postgres_sql(
        app,
        "CREATE TABLE orders (id serial PRIMARY KEY, note text);"
        "INSERT INTO orders (note) SELECT 'line ' || g FROM generate_series(1, 1000) g;"
        'CREATE TABLE "Audit Log" (id int);',
    )
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="test"), docker_client).backup_id
    tables, rows = dump_item(catalog, backup_id)
    assert rows == 1000 and tables >= 2
    postgres_sql(app, "DELETE FROM orders WHERE id > 10")
    postgres_sql(app, "CREATE DATABASE intruder", database="postgres")

    run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert f"verified {tables} tables (1000 rows)" in run.message
    assert "databases not in the backup were left: intruder" in run.message
    assert postgres_sql(app, "SELECT count(*) FROM orders") == "1000\n"
