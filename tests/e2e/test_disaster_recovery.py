"""The disaster-recovery drill: host A backs up two apps to S3 and is destroyed (its
catalog, resources and the apps' data are gone); host B, with only the storage's settings
and the recovery kit, gets a new passphrase from the kit, rebuilds its catalog, lists the
backups and restores both apps into freshly created, empty ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from docker import DockerClient

from tests.e2e.conftest import Lifeboat
from tests.support.docker_apps import BUSYBOX, IDLE, TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Endpoint


def storage_yaml(endpoint: S3Endpoint, bucket: str, passphrase_env: str) -> str:
    return (
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: offsite}\n"
        f"spec:\n  s3:\n    bucket: {bucket}\n    prefix: host-a\n    endpoint: {endpoint.url}\n"
        "    region: us-east-1\n    pathStyle: true\n    credentials:\n"
        "      accessKeyId: {env: DR_S3_KEY}\n      secretAccessKey: {env: DR_S3_SECRET}\n"
        f"  encryption: {{passphrase: {{env: {passphrase_env}}}}}\n"
    )


def notes_app(client: DockerClient, name: str) -> TestApp:
    app = TestApp(client, name)
    app.run("notes", BUSYBOX, IDLE, volumes={app.volume("notes"): {"bind": "/notes", "mode": "rw"}})
    return app


def test_host_b_restores_both_apps_from_s3_with_the_recovery_kit(
    tmp_path: Path,
    docker_client: DockerClient,
    s3_endpoint: S3Endpoint,
    made_apps: list[TestApp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DR_S3_KEY", ACCESS_KEY)
    monkeypatch.setenv("DR_S3_SECRET", SECRET_KEY)
    monkeypatch.setenv("DR_PASS_A", "host A passphrase, lost with host A")
    bucket = s3_endpoint.new_bucket()

    # Host A: two apps, one backup each, and a recovery kit kept off the host.
    host_a = Lifeboat(tmp_path / "host-a")
    host_a.resources.mkdir(parents=True)
    (host_a.resources / "offsite.yaml").write_text(storage_yaml(s3_endpoint, bucket, "DR_PASS_A"))
    assert host_a("repo", "--storage", "offsite", "init").code == 0
    blog = wordpress_like(docker_client)
    notes = notes_app(docker_client, f"{blog.name}-notes")
    made_apps += [blog, notes]
    mariadb_sql(blog, "CREATE TABLE posts (id INT, title TEXT); INSERT INTO posts VALUES (1, 'hello'), (2, 'dr');")
    (blog.mountpoint("uploads") / "photo.jpg").write_bytes(random_bytes(11, 200_000))
    (notes.mountpoint("notes") / "todo.md").write_text("- test the restore\n")
    backup_ids = {}
    for app in (blog, notes):
        made = host_a("backup", app.name, "--storage", "offsite", "-o", "json")
        assert made.code == 0, made.err
        backup_ids[app.name] = json.loads(made.out)["backup"]["backup_id"]
    kit = tmp_path / "recovery-kit.txt"  # printed and put in a safe, say
    assert host_a("repo", "--storage", "offsite", "key", "export", "-f", str(kit)).code == 0

    # Host A is destroyed: catalog, resources and passphrase gone; the apps come back empty.
    shutil.rmtree(host_a.home)
    monkeypatch.delenv("DR_PASS_A")
    for app in (blog, notes):
        app.remove()
        made_apps.remove(app)
    blog = wordpress_like(docker_client, name=blog.name)
    notes = notes_app(docker_client, notes.name)
    made_apps += [blog, notes]
    assert "posts" not in mariadb_sql(blog, "SHOW TABLES")

    # Host B: the storage's settings, a new passphrase given through the kit.
    host_b = Lifeboat(tmp_path / "host-b")
    host_b.resources.mkdir(parents=True)
    (host_b.resources / "offsite.yaml").write_text(storage_yaml(s3_endpoint, bucket, "DR_PASS_B"))
    new_passphrase = tmp_path / "host-b-passphrase"
    new_passphrase.write_text("host B passphrase\n")
    monkeypatch.setenv("DR_PASS_B", "host B passphrase")
    imported = host_b(
        "repo", "--storage", "offsite", "key", "import", str(kit), "--new-passphrase-file", str(new_passphrase)
    )
    assert imported.code == 0, imported.err
    synced = host_b("catalog", "sync", "-o", "json")
    assert synced.code == 0, synced.err
    assert json.loads(synced.out) == [{"storage": "offsite", "added": 2, "removed": 0, "unchanged": 0}]
    listed = json.loads(host_b("get", "backups", "-o", "json").out)
    assert {b["backup_id"] for b in listed} == set(backup_ids.values())

    for app in (blog, notes):
        restored = host_b("restore", backup_ids[app.name])
        assert restored.code == 0, restored.err
        assert "Succeeded" in restored.out
    assert mariadb_sql(blog, "SELECT id, title FROM posts ORDER BY id") == "1\thello\n2\tdr\n"
    assert (blog.mountpoint("uploads") / "photo.jpg").read_bytes() == random_bytes(11, 200_000)
    assert (notes.mountpoint("notes") / "todo.md").read_text() == "- test the restore\n"
    assert blog.state("web") == "running" and blog.state("db") == "running" and notes.state("notes") == "running"
