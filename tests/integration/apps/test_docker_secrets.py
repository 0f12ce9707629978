"""Apps whose database passwords are Docker secrets: only the *_FILE variables are set, the
file is mounted into the database container, and the policy names no password. Lifeboat
reads the file inside the container; backups and restores work, and the password appears
in no catalog row, message or snapshot tag."""

from __future__ import annotations

import secrets
from pathlib import Path

from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus, ItemKind
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest
from controller.repository.repository import Repository
from controller.resources.restore import RestorePhase
from tests.support.docker_apps import MARIADB, POSTGRES, ROOT_PASSWORD, TestApp, health, mariadb_sql, postgres_sql
from tests.support.runs import back_up, restore

SECRET_PATH = "/run/secrets/db-password"


def secret_file(directory: Path, password: str) -> dict[str, dict[str, str]]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "db-password").write_text(password + "\n")  # as `docker secret` files often end
    return {str(directory / "db-password"): {"bind": SECRET_PATH, "mode": "ro"}}


def database_with_a_secret(client: DockerClient, directory: Path, engine: str, password: str) -> TestApp:
    """A database container whose password is only a Docker secret's file (the *_FILE variable)."""
    app = TestApp(client, f"sec{secrets.token_hex(3)}")
    if engine == "mariadb":
        image, command, data = MARIADB, ["mariadb"], "/var/lib/mysql"
        environment = {"MARIADB_ROOT_PASSWORD_FILE": SECRET_PATH, "MYSQL_DATABASE": "wordpress"}
        check = ["CMD-SHELL", f'MYSQL_PWD="$(cat {SECRET_PATH})" mariadb-admin -uroot ping']
    else:
        image, command, data = POSTGRES, ["postgres"], "/var/lib/postgresql/data"
        environment = {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD_FILE": SECRET_PATH, "POSTGRES_DB": "shop"}
        check = ["CMD", "pg_isready", "-U", "shop", "-d", "shop"]
    volumes = {app.volume("dbdata"): {"bind": data, "mode": "rw"}, **secret_file(directory, password)}
    app.run("db", image, command, environment=environment, volumes=volumes, healthcheck=health(check))
    app.wait_healthy("db")
    return app


def round_trip(catalog: Catalog, repository: Repository, client: DockerClient, app: TestApp) -> str:
    row = back_up(catalog, repository, BackupRequest(app=app.name, storage="test"), client)
    assert row.status == BackupStatus.COMPLETED
    (dump,) = [i for i in catalog.items_of(row.backup_id) if i.kind == ItemKind.DUMP]
    assert dump.exit_code == 0 and dump.bytes > 0
    return row.backup_id


def test_a_mariadb_whose_root_password_is_a_docker_secret_backs_up_and_restores(
    tmp_path: Path, docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = database_with_a_secret(docker_client, tmp_path / "secrets", "mariadb", ROOT_PASSWORD)
    made_apps.append(app)
    mariadb_sql(app, "CREATE TABLE posts (id INT PRIMARY KEY, title TEXT); INSERT INTO posts VALUES (1, 'hello')")
    backup_id = round_trip(catalog, repository, docker_client, app)
    mariadb_sql(app, "DROP TABLE posts")

    run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert mariadb_sql(app, "SELECT id, title FROM posts") == "1\thello\n"
    rows = catalog.list_backups()
    assert all(ROOT_PASSWORD not in (r.error_message or "") + r.description for r in rows)
    assert all(ROOT_PASSWORD not in str(s.snapshot.tags) for s in repository.snapshots())


def test_a_postgresql_whose_password_is_a_docker_secret_backs_up_and_restores(
    tmp_path: Path, docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = database_with_a_secret(docker_client, tmp_path / "secrets", "postgresql", "pg-secret-Kq2")
    made_apps.append(app)
    postgres_sql(app, "CREATE TABLE orders (id int PRIMARY KEY, total int); INSERT INTO orders VALUES (1, 42)")
    backup_id = round_trip(catalog, repository, docker_client, app)
    postgres_sql(app, "DELETE FROM orders")

    run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert postgres_sql(app, "SELECT id, total FROM orders") == "1|42\n"
