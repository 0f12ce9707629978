"""Back up and restore whole apps on the real Docker engine: files byte-identical, every
row back, containers running — and a failed import rolls back to the pre-restore state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import BackupStatus, ItemKind
from controller.errors import DumpFailed, HookFailed
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.resources.backup_policy import BackupType, Consistency, DatabaseOverride, Hook, Hooks, OnError
from controller.resources.meta import SecretRef
from controller.resources.restore import RestorePhase
from tests.integration.repository.conftest import tamper
from tests.support.docker_apps import (
    TestApp,
    mariadb_sql,
    postgres_app,
    postgres_sql,
    wordpress_like,
)
from tests.support.repository import random_bytes, tree_state
from tests.support.runs import back_up
from tests.support.runs import restore as run_restore


def take_backup(client: DockerClient, catalog: Catalog, repository: Repository, app: str, **options: object) -> str:
    request = BackupRequest(app=app, storage="test", **options)  # type: ignore[arg-type]
    return back_up(catalog, repository, request, client).backup_id


def restore(client: DockerClient, catalog: Catalog, repository: Repository, backup_id: str, **options: object):  # type: ignore[no-untyped-def]
    return run_restore(catalog, repository, RestoreRequest(backup_id, **options), client)  # type: ignore[arg-type]


def write_uploads(app: TestApp) -> None:
    app.exec("web", ["sh", "-c", "mkdir -p /var/www/uploads/2026/11 && echo hello > /var/www/uploads/2026/11/a.txt"])
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(random_bytes(1, 300_000))
    (app.mountpoint("uploads") / "link").symlink_to("2026/11/a.txt")


def fill_wordpress_db(app: TestApp) -> None:
    mariadb_sql(
        app,
        "CREATE TABLE wp_posts (id INT PRIMARY KEY, title TEXT, body LONGBLOB);"
        "INSERT INTO wp_posts VALUES (1, 'hello', REPEAT('x', 5000)), (2, 'world', NULL);"
        "CREATE TABLE wp_options (name VARCHAR(64) PRIMARY KEY, value TEXT);"
        "INSERT INTO wp_options VALUES ('siteurl', 'https://example.org');",
    )


def wordpress_with_data(client: DockerClient, made_apps: list[TestApp]) -> TestApp:
    app = wordpress_like(client)
    made_apps.append(app)
    write_uploads(app)
    fill_wordpress_db(app)
    return app


def test_wordpress_like_app_comes_back_byte_identical_and_running(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_with_data(docker_client, made_apps)
    files_then = tree_state(app.mountpoint("uploads"))
    backup_id = take_backup(docker_client, catalog, repository, app.name, consistency=Consistency.STOP)

    row = catalog.get_backup(backup_id)
    assert row.status == BackupStatus.COMPLETED and row.snapshot_id
    items = {i.name: i for i in catalog.items_of(backup_id)}
    assert items["databases/db.sql"].kind == ItemKind.DUMP and items["databases/db.sql"].bytes > 5000
    assert items["volumes/uploads"].files == 2 and "volumes/dbdata" not in items  # the dump is the database's copy
    assert app.state("web") == "running" and app.state("db") == "running"

    # Damage: files changed, added and deleted; a table dropped, rows changed, a table added.
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(b"overwritten")
    (app.mountpoint("uploads") / "new.txt").write_text("not in the backup")
    (app.mountpoint("uploads") / "2026" / "11" / "a.txt").unlink()
    mariadb_sql(app, "DROP TABLE wp_posts; UPDATE wp_options SET value='hacked'; CREATE TABLE junk (a INT);")

    run = restore(docker_client, catalog, repository, backup_id)
    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert run.safety_backup_id and catalog.get_backup(run.safety_backup_id).status == BackupStatus.COMPLETED
    assert tree_state(app.mountpoint("uploads")) == files_then
    app.wait_healthy("db")
    assert (
        mariadb_sql(app, "SELECT id, title, LENGTH(body) FROM wp_posts ORDER BY id")
        == "1\thello\t5000\n2\tworld\tNULL\n"
    )
    assert mariadb_sql(app, "SELECT value FROM wp_options") == "https://example.org\n"
    assert mariadb_sql(app, "SHOW TABLES") == "wp_options\nwp_posts\n"  # junk is gone
    assert app.state("web") == "running" and app.state("db") == "running"
    assert catalog.quiesced_on(row.host) == []


def test_postgresql_app_with_a_bind_mount_restores_every_row(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp], tmp_path: Path
) -> None:
    app = postgres_app(docker_client, tmp_path / "shop-config")
    made_apps.append(app)
    (tmp_path / "shop-config" / "shop.ini").write_text("[shop]\ncurrency = EUR\n")
    postgres_sql(
        app,
        "CREATE TABLE orders (id serial PRIMARY KEY, total numeric);"
        "INSERT INTO orders (total) SELECT g FROM generate_series(1, 1000) g;",
    )
    backup_id = take_backup(docker_client, catalog, repository, app.name, consistency=Consistency.PAUSE)
    assert app.state("web") == "running"

    postgres_sql(app, "DELETE FROM orders WHERE id > 10; CREATE TABLE extra (a int);")
    (tmp_path / "shop-config" / "shop.ini").write_text("[shop]\ncurrency = XXX\n")
    run = restore(docker_client, catalog, repository, backup_id)
    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert postgres_sql(app, "SELECT count(*), sum(total) FROM orders") == "1000|500500\n"
    assert postgres_sql(app, "SELECT count(*) FROM pg_tables WHERE tablename = 'extra'") == "0\n"
    assert (tmp_path / "shop-config" / "shop.ini").read_text() == "[shop]\ncurrency = EUR\n"
    assert app.state("web") == "running" and app.state("db") == "running"


def test_a_failed_import_rolls_back_to_the_data_before_the_restore(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_with_data(docker_client, made_apps)
    backup_id = take_backup(docker_client, catalog, repository, app.name)
    # Make the backup's dump unreadable: flip a byte inside its (only) blob in the pack.
    snapshot = repository.load_snapshot(catalog.get_backup(backup_id).snapshot_id or "")
    from controller.repository.restorer import find_node
    from controller.repository.writer import pack_key

    (blob,) = find_node(repository, snapshot, "databases/db.sql").content
    location = repository.index.get(bytes.fromhex(blob))
    assert location is not None
    key = pack_key(location.pack)
    packed = bytearray(repository.storage.load(key))
    packed[location.offset + location.length // 2] ^= 0x01
    tamper(repository.storage, key, bytes(packed))

    (app.mountpoint("uploads") / "after.txt").write_text("written after the backup")
    mariadb_sql(app, "INSERT INTO wp_posts VALUES (3, 'after', NULL)")
    files_before_restore = tree_state(app.mountpoint("uploads"))

    run = restore(docker_client, catalog, repository, backup_id)
    assert run.phase == RestorePhase.ROLLED_BACK.value, run.message
    assert f"importing databases/db.sql into {app.name}-db-1" in run.message
    assert "failed authentication" in run.message and f"runs on safety backup {run.safety_backup_id}" in run.message
    assert tree_state(app.mountpoint("uploads")) == files_before_restore
    app.wait_healthy("db")
    assert mariadb_sql(app, "SELECT id FROM wp_posts ORDER BY id") == "1\n2\n3\n"
    assert app.state("web") == "running" and app.state("db") == "running"


def test_a_failing_dump_fails_the_backup_with_the_tools_stderr(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    fill_wordpress_db(app)
    wrong = DatabaseOverride(service="db", username="root", password=SecretRef(env="WRONG_DB_PASSWORD"))
    request = BackupRequest(app=app.name, storage="test", databases=[wrong])
    with pytest.raises(DumpFailed, match="Access denied") as caught:
        back_up(catalog, repository, request, docker_client, read_secret=lambda ref: "not-the-password")
    assert "not-the-password" not in str(caught.value)
    cause, _, where = str(caught.value).rpartition(" (")
    assert "Access denied" in cause  # the tool's own error first, one line, then where
    assert re.fullmatch(rf"mysqldump exited with \d+ in {app.name}-db-1\)", where), where
    assert "\n" not in str(caught.value)
    (row,) = catalog.list_backups()
    assert row.status == BackupStatus.FAILED and row.snapshot_id is None
    assert row.error_code == "BACKUP_CREATE_FAILED" and "Access denied" in (row.error_message or "")
    assert repository.snapshots() == []


def test_restore_into_a_clone_leaves_the_original_alone(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_with_data(docker_client, made_apps)
    backup_id = take_backup(docker_client, catalog, repository, app.name, backup_type=BackupType.FULL)
    mariadb_sql(app, "DELETE FROM wp_posts")
    clone = wordpress_like(docker_client, f"{app.name}clone")
    made_apps.append(clone)
    volumes_before = {volume.name for volume in docker_client.volumes.list()}

    run = restore(docker_client, catalog, repository, backup_id, target_app=clone.name)
    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert {volume.name for volume in docker_client.volumes.list()} == volumes_before  # the clone's own, no new one
    assert mariadb_sql(clone, "SELECT title FROM wp_posts ORDER BY id") == "hello\nworld\n"
    assert tree_state(clone.mountpoint("uploads")) == tree_state(app.mountpoint("uploads"))
    assert mariadb_sql(app, "SELECT count(*) FROM wp_posts") == "0\n"  # the original is untouched


def mongo_image(client: DockerClient) -> str | None:
    tags = [tag for image in client.images.list() for tag in image.tags]
    return next((tag for tag in tags if "mongo" in tag.rsplit("/", 1)[-1].split(":")[0]), None)


def test_mongodb_app_round_trip(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    image = mongo_image(docker_client)
    if image is None:
        pytest.skip("no mongod image on this host: MongoDB is in none of the package registries reachable here")
    app = TestApp(docker_client, f"mongo{made_apps.__len__()}x")
    made_apps.append(app)
    credentials = {"MONGO_INITDB_ROOT_USERNAME": "admin", "MONGO_INITDB_ROOT_PASSWORD": "mongo-pw"}
    app.run("db", image, [], environment=credentials, volumes={app.volume("data"): {"bind": "/data/db", "mode": "rw"}})
    shell = ["mongosh", "--quiet", "-u", "admin", "-p", "mongo-pw", "--authenticationDatabase", "admin", "shop"]
    for _ in range(120):
        if app.containers["db"].exec_run([*shell, "--eval", "db.runCommand({ping: 1}).ok"])[0] == 0:
            break
    app.exec("db", [*shell, "--eval", "db.orders.insertMany([{n: 1}, {n: 2}, {n: 3}])"])
    backup_id = take_backup(docker_client, catalog, repository, app.name)
    app.exec("db", [*shell, "--eval", "db.orders.drop()"])
    run = restore(docker_client, catalog, repository, backup_id)
    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert app.exec("db", [*shell, "--eval", "db.orders.countDocuments()"]).strip() == "3"


def test_hooks_run_around_the_backup_and_a_failing_pre_hook_fails_it(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    marker = Hook(service="web", command=["sh", "-c", "echo flushed > /var/www/uploads/.flushed"])
    flaky = Hook(service="web", command=["sh", "-c", "echo cache busy >&2; exit 7"], on_error=OnError.CONTINUE)
    slow = Hook(service="web", command=["sleep", "60"], timeout_seconds=1, on_error=OnError.CONTINUE)
    backup_id = take_backup(
        docker_client,
        catalog,
        repository,
        app.name,
        hooks=Hooks(pre=[marker], post=[flaky, slow]),
        consistency=Consistency.PAUSE,
    )
    snapshot = repository.load_snapshot(catalog.get_backup(backup_id).snapshot_id or "")
    out = app.mountpoint("uploads").parent / "restored-check"
    Restorer(repository).restore(snapshot, out, subpath="volumes/uploads")
    assert (out / ".flushed").read_text() == "flushed\n"  # the pre-hook ran before the volume was read
    hooks = [i for i in catalog.items_of(backup_id) if i.kind == ItemKind.HOOK]
    assert [(h.exit_code, h.error) for h in hooks] == [
        (0, None),
        (7, f"cache busy (post hook 1 (sh -c echo cache busy >&2; exit 7) exited with 7 in {app.name}-web-1)"),
        (124, f"timed out after 1 s (post hook 2 (sleep 60) exited with 124 in {app.name}-web-1)"),
    ]
    assert "sleep 60" not in app.exec("web", ["ps"])  # the timed-out command was killed

    failing = Hook(service="web", command=["sh", "-c", "echo maintenance mode unavailable >&2; exit 3"])
    with pytest.raises(HookFailed, match="maintenance mode unavailable"):
        take_backup(docker_client, catalog, repository, app.name, hooks=Hooks(pre=[failing]))
    assert catalog.list_backups()[0].status == BackupStatus.FAILED
    assert len(repository.snapshots()) == 1
    assert app.state("web") == "running"
