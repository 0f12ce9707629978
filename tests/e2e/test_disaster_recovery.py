"""The disaster-recovery drill: host A backs up two Compose apps to S3 and is destroyed (its
catalog, resources, the apps' project folders, containers, volumes, networks and locally
built image are gone); host B, with only the storage's settings and the recovery kit, gets
a new passphrase from the kit, rebuilds its catalog, lists the backups and restores each
app's latest backup: every app comes back running from nothing, with folder, image and
data, and docker-compose manages it in its folder."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from docker import DockerClient
from docker.errors import ImageNotFound

from tests.e2e.conftest import Lifeboat
from tests.support.compose_apps import blog_project, build_web_image, free_port
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


def test_host_b_brings_both_apps_back_from_s3_with_the_recovery_kit_alone(
    tmp_path: Path,
    docker_client: DockerClient,
    s3_endpoint: S3Endpoint,
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
    image = build_web_image(docker_client, tmp_path / "web-image", f"lifeboat-test/drweb{tmp_path.name[-6:]}:1", "1")
    apps = [blog_project(docker_client, tmp_path / name, image, free_port()) for name in ("blog", "shop")]
    try:
        blog, shop = apps
        blog.sql("CREATE TABLE posts (id INT, title TEXT); INSERT INTO posts VALUES (1, 'hello'), (2, 'dr');")
        (blog.mountpoint("uploads") / "photo.jpg").write_bytes(random_bytes(11, 200_000))
        (shop.mountpoint("uploads") / "todo.md").write_text("- test the restore\n")
        (shop.folder / "config" / "site.conf").write_text("title = my shop\n")
        backup_ids = {}
        for app in apps:
            made = host_a("backup", app.name, "--storage", "offsite", "-o", "json")
            assert made.code == 0, made.err
            backup_ids[app.name] = json.loads(made.out)["backup"]["backup_id"]
        kit = tmp_path / "recovery-kit.txt"  # printed and put in a safe, say
        assert host_a("repo", "--storage", "offsite", "key", "export", "-f", str(kit)).code == 0

        # Host A is destroyed: catalog, resources, passphrase, the apps and their folders, the image.
        shutil.rmtree(host_a.home)
        monkeypatch.delenv("DR_PASS_A")
        for app in apps:
            app.remove()
            shutil.rmtree(app.folder)
        docker_client.images.remove(image, force=True)

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

        for app in apps:
            restored = host_b("restore", backup_ids[app.name])
            assert restored.code == 0, restored.out + restored.err
            assert "Succeeded" in restored.out and "recreated" in restored.out
        assert blog.sql("SELECT id, title FROM posts ORDER BY id") == "1\thello\n2\tdr\n"
        assert (blog.mountpoint("uploads") / "photo.jpg").read_bytes() == random_bytes(11, 200_000)
        assert shop.exec("web", ["cat", "/var/www/uploads/todo.md"]) == "- test the restore\n"
        assert shop.exec("web", ["cat", "/etc/site/site.conf"]) == "title = my shop\n"
        assert blog.exec("web", ["cat", "/version"]) == "1\n"  # the image, from the backup
        for app in apps:
            services = app.compose("ps", "--services").split()
            assert sorted(services) == ["db", "web"]
            rows = [line for line in app.compose("ps").splitlines()[2:] if line.strip()]  # below the header
            assert len(rows) == 2 and all(" Up" in row for row in rows), rows
    finally:
        for app in apps:
            app.remove()
        with contextlib.suppress(ImageNotFound):
            docker_client.images.remove(image, force=True)
