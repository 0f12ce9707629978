"""Whole apps: a backup records the app itself (its Compose project folder, its images, its
containers' settings), so a restore brings back an app the host lacks, a clone beside its
source, or the app as it was before an upgrade. Every check reads what the app's own
containers and docker-compose see afterwards."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker import DockerClient

from tests.e2e.conftest import Lifeboat
from tests.support.compose_apps import ComposeApp, blog_project, build_web_image, free_port
from tests.support.docker_apps import BUSYBOX, IDLE, ROOT_PASSWORD, TestApp
from tests.support.repository import random_bytes

PASSPHRASE = "whole apps passphrase"


@pytest.fixture
def host(lifeboat: Lifeboat, monkeypatch: pytest.MonkeyPatch, docker_client: DockerClient) -> Lifeboat:
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {lifeboat.home / 'repo'}}}\n"
        "  encryption: {passphrase: {env: WHOLE_APPS_PASSPHRASE}}\n"
    )
    monkeypatch.setenv("WHOLE_APPS_PASSPHRASE", PASSPHRASE)
    assert lifeboat("repo", "--storage", "local", "init").code == 0
    return lifeboat


@pytest.fixture
def compose_apps(docker_client: DockerClient) -> Iterator[list[ComposeApp]]:
    """Compose apps a test makes (clones included): removed afterwards, with their images."""
    apps: list[ComposeApp] = []
    yield apps
    for app in apps:
        app.remove()
    for image in docker_client.images.list(filters={"label": "io.lifeboat.test=1"}):
        docker_client.images.remove(image.id, force=True)


def backup(host: Lifeboat, app: str) -> dict[str, object]:
    made = host("backup", app, "--storage", "local", "-o", "json")
    assert made.code == 0, made.err
    row: dict[str, object] = json.loads(made.out)["backup"]
    return row


def blog_with_data(client: DockerClient, folder: Path, version: str = "1") -> ComposeApp:
    tag = f"lifeboat-test/web{folder.name}:{version}"
    image = build_web_image(client, folder.parent / f"web-image-{version}", tag, version)
    app = blog_project(client, folder, image, free_port())
    app.sql("CREATE TABLE posts (id INT, title TEXT); INSERT INTO posts VALUES (1, 'hello'), (2, 'world');")
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(random_bytes(5, 300_000))
    return app


@pytest.fixture
def blog(tmp_path: Path, docker_client: DockerClient, compose_apps: list[ComposeApp]) -> ComposeApp:
    """A Compose app on a locally built web image, with rows in its database and an upload."""
    made = blog_with_data(docker_client, tmp_path / "blog")
    compose_apps.append(made)
    return made


def test_undo_an_upgrade_puts_back_the_image_tag_and_the_data(
    tmp_path: Path, host: Lifeboat, docker_client: DockerClient, blog: ComposeApp
) -> None:
    app = blog
    first = backup(host, app.name)
    second = backup(host, app.name)
    backup_id = str(second["backup_id"])
    # The locally built image is saved once: a second backup of the unchanged app adds little.
    assert int(str(first["added_bytes"])) > 1_000_000
    assert int(str(second["added_bytes"])) < 1024 * 1024
    described = host("describe", "backup", backup_id).out
    assert f"project: {app.name}" in described and f"folder: {app.folder}" in described
    assert "from: backup" in described and "from: registry" in described  # the local image saved, MariaDB's not
    assert ROOT_PASSWORD not in described  # the recorded settings hold it; describe never shows them
    env_before = (app.folder / ".env").read_text()

    # The upgrade: a new image tag in .env, the app recreated on it, the data migrated.
    upgraded = build_web_image(docker_client, tmp_path / "web-image-2", "lifeboat-test/webblog:2", "2")
    (app.folder / ".env").write_text(env_before.replace(app.container("web").attrs["Config"]["Image"], upgraded))
    app.compose("up", "-d")
    assert app.exec("web", ["cat", "/version"]) == "2\n"
    app.sql("ALTER TABLE posts ADD COLUMN body TEXT; DELETE FROM posts WHERE id = 2;")
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(b"migrated")

    undone = host("restore", backup_id, "--definition")
    assert undone.code == 0, undone.out + undone.err
    assert "Succeeded" in undone.out and "replaced" in undone.out
    assert (app.folder / ".env").read_text() == env_before
    assert app.exec("web", ["cat", "/version"]) == "1\n"
    assert app.sql("SELECT * FROM posts ORDER BY id") == "1\thello\n2\tworld\n"
    assert (app.mountpoint("uploads") / "photo.jpg").read_bytes() == random_bytes(5, 300_000)
    assert "Up" in app.compose("ps", "web") and "Up" in app.compose("ps", "db")
    safety = json.loads(host("get", "backups", "--app", app.name, "-o", "json").out)
    assert any(b["safety"] for b in safety)


def test_a_clone_runs_beside_its_source_with_its_own_volumes_and_no_published_ports(
    tmp_path: Path, host: Lifeboat, docker_client: DockerClient, compose_apps: list[ComposeApp], blog: ComposeApp
) -> None:
    source = blog
    backup_id = str(backup(host, source.name)["backup_id"])
    clone = ComposeApp(docker_client, f"{source.name}-clone", tmp_path / f"{source.name}-clone")
    compose_apps.append(clone)

    cloned = host("restore", backup_id, "--target-app", clone.name)
    assert cloned.code == 0, cloned.out + cloned.err
    assert "recreated" in cloned.out
    assert clone.sql("SELECT * FROM posts ORDER BY id") == "1\thello\n2\tworld\n"
    assert clone.mountpoint("uploads") != source.mountpoint("uploads")
    assert (clone.mountpoint("uploads") / "photo.jpg").read_bytes() == random_bytes(5, 300_000)
    assert (clone.folder / "config" / "site.conf").read_text() == "title = my blog\n"
    assert clone.container("web").attrs["HostConfig"]["PortBindings"] in ({}, None)
    assert source.container("web").attrs["HostConfig"]["PortBindings"]  # the source keeps its port
    assert "Up" in clone.compose("ps", "web") and "Up" in source.compose("ps", "web")
    clone.sql("DELETE FROM posts")
    assert source.sql("SELECT COUNT(*) FROM posts") == "2\n"  # its own database, its own volumes


def test_without_a_compose_cli_the_app_is_made_through_the_docker_api(
    tmp_path: Path,
    host: Lifeboat,
    docker_client: DockerClient,
    compose_apps: list[ComposeApp],
    made_apps: list[TestApp],
    monkeypatch: pytest.MonkeyPatch,
    blog: ComposeApp,
) -> None:
    notes = TestApp(docker_client, f"notes{blog.name}")  # containers not made by Compose
    notes.run("notes", BUSYBOX, IDLE, volumes={notes.volume("notes"): {"bind": "/notes", "mode": "rw"}})
    made_apps.append(notes)
    (notes.mountpoint("notes") / "todo.md").write_text("- restore without compose\n")
    ids = {app: str(backup(host, app)["backup_id"]) for app in (blog.name, notes.name)}
    blog.remove()
    shutil.rmtree(blog.folder)
    notes.remove()
    bin_dir = tmp_path / "bin"  # a PATH with the docker CLI and no Compose
    bin_dir.mkdir()
    os.symlink(shutil.which("docker") or "/usr/bin/docker", bin_dir / "docker")
    monkeypatch.setenv("PATH", str(bin_dir))

    for backup_id in ids.values():
        restored = host("restore", backup_id)
        assert restored.code == 0, restored.out + restored.err
        assert "through the Docker API" in restored.out
    monkeypatch.undo()
    assert blog.sql("SELECT COUNT(*) FROM posts") == "2\n"
    assert "Up" in blog.compose("ps", "web")  # Compose's labels: docker-compose manages it
    notes.containers["notes"] = docker_client.containers.get(f"{notes.name}-notes-1")
    assert notes.state("notes") == "running"
    assert notes.exec("notes", ["cat", "/notes/todo.md"]) == "- restore without compose\n"


def test_a_folder_holding_other_content_and_a_missing_image_are_refused_before_anything_changes(
    tmp_path: Path, host: Lifeboat, docker_client: DockerClient, blog: ComposeApp
) -> None:
    app = blog
    backup_id = str(backup(host, app.name)["backup_id"])
    app.remove()
    (app.folder / "docker-compose.yml").write_text("# another app's file\n")

    refused = host("restore", backup_id)
    assert refused.code != 0
    assert "holds other content (docker-compose.yml)" in refused.out + refused.err
    assert "--project-dir" in refused.out + refused.err
    assert not docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={app.name}"})
    assert (app.folder / "docker-compose.yml").read_text() == "# another app's file\n"

    elsewhere = tmp_path / "elsewhere"
    moved = host("restore", backup_id, "--project-dir", str(elsewhere))
    assert moved.code == 0, moved.out + moved.err
    assert "Up" in ComposeApp(docker_client, app.name, elsewhere).compose("ps", "web")

    # A locally built image left out of the backup (images: never) and gone from the host.
    policy = host.resources / "policy.yaml"
    policy.write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: noimages}\n"
        f"spec:\n  app: {app.name}\n  storage: local\n  include: {{images: never}}\n  retention: {{keepLast: 3}}\n"
    )
    without = host("backup", "--policy", "noimages", "-o", "json")
    assert without.code == 0, without.err
    image = app.container("web").attrs["Config"]["Image"]
    ComposeApp(docker_client, app.name, elsewhere).remove()
    docker_client.images.remove(image, force=True)
    missing = host("restore", json.loads(without.out)["backup"]["backup_id"], "--project-dir", str(tmp_path / "third"))
    assert missing.code != 0
    assert f"image {image}" in missing.out + missing.err and "no registry digest" in missing.out + missing.err
    assert not (tmp_path / "third").exists()


def test_an_image_a_registry_holds_is_pulled_by_its_digest_on_a_host_that_lacks_it(
    tmp_path: Path, host: Lifeboat, docker_client: DockerClient, compose_apps: list[ComposeApp]
) -> None:
    local = build_web_image(docker_client, tmp_path / "web-image", "lifeboat-test/pulled:1", "pulled")
    pushed = f"localhost:5000/lifeboat-test/pulled:{tmp_path.name[-8:]}"
    docker_client.images.get(local).tag(pushed)
    for line in docker_client.images.push(pushed, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(local)
    app = blog_project(docker_client, tmp_path / "blog", pushed, free_port())
    compose_apps.append(app)
    made = backup(host, app.name)
    described = host("describe", "backup", str(made["backup_id"]), "-o", "json").out
    assert {i["from"] for i in json.loads(described)["app"]["images"]} == {"registry"}  # nothing saved

    app.remove()
    shutil.rmtree(app.folder)
    docker_client.images.remove(pushed, force=True)
    restored = host("restore", str(made["backup_id"]))
    assert restored.code == 0, restored.out + restored.err
    assert "1 image(s) pulled by digest" in restored.out
    assert app.exec("web", ["cat", "/version"]) == "pulled\n"
    assert app.container("web").attrs["Config"]["Image"] == pushed
