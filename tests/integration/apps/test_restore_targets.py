"""A restore writes each volume into what the app's own containers mount, however the volume
was made: `docker volume create` (no labels, or only the project's), an `external: true`
volume of a docker-compose project. It never creates a volume; a snapshot volume that
matches nothing stops the restore before anything changes, and --volume-map says where.
Every check reads what the app's containers see."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
import yaml
from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import ItemKind
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest
from controller.repository.repository import Repository
from controller.resources.restore import RestorePhase
from tests.support.docker_apps import BUSYBOX, IDLE, TEST_LABEL, TestApp
from tests.support.runs import back_up, restore

FILES = "/srv/files"


def volume_names(client: DockerClient) -> set[str]:
    return {volume.name for volume in client.volumes.list()}


def app_on_a_plain_volume(client: DockerClient, project_label: bool = False, destination: str = FILES) -> TestApp:
    """An app whose volume was made with `docker volume create`, not by Compose (with
    `project_label`, it carries the project's label and no volume label)."""
    app = TestApp(client, f"plain{secrets.token_hex(3)}")
    labels = {"com.docker.compose.project": app.name} if project_label else {}
    volume = client.volumes.create(f"{app.name}-data", labels={TEST_LABEL: "1", **labels})
    app.volumes["data"] = volume
    app.run("web", BUSYBOX, IDLE, volumes={volume.name: {"bind": destination, "mode": "rw"}})
    return app


def damage(app: TestApp) -> None:
    app.exec("web", ["sh", "-c", f"echo damaged > {FILES}/readme.txt; echo new > {FILES}/extra.txt"])


def assert_restored(app: TestApp) -> None:
    assert app.exec("web", ["cat", f"{FILES}/readme.txt"]) == "original\n"
    assert app.exec("web", ["ls", FILES]).split() == ["readme.txt"]


def take_backup(client: DockerClient, catalog: Catalog, repository: Repository, app: str) -> str:
    return back_up(catalog, repository, BackupRequest(app=app, storage="test"), client).backup_id


@pytest.mark.parametrize("project_label", [False, True], ids=["no-labels", "project-label-only"])
def test_a_volume_made_outside_compose_is_restored_where_the_app_reads_it(
    docker_client: DockerClient,
    catalog: Catalog,
    repository: Repository,
    made_apps: list[TestApp],
    project_label: bool,
) -> None:
    app = app_on_a_plain_volume(docker_client, project_label)
    made_apps.append(app)
    app.exec("web", ["sh", "-c", f"echo original > {FILES}/readme.txt"])
    backup_id = take_backup(docker_client, catalog, repository, app.name)
    damage(app)
    before = volume_names(docker_client)

    run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert_restored(app)
    assert volume_names(docker_client) == before  # nothing written into a new, unmounted volume
    assert app.state("web") == "running"


def test_an_external_volume_of_a_docker_compose_project_is_restored(
    tmp_path: Path, docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    project = f"ext{secrets.token_hex(3)}"
    external = docker_client.volumes.create(f"{project}-shared", labels={TEST_LABEL: "1"})
    definition = {
        "version": "3.7",
        "services": {
            "web": {"image": BUSYBOX, "command": IDLE, "volumes": [f"files:{FILES}"], "labels": {TEST_LABEL: "1"}}
        },
        "volumes": {"files": {"external": True, "name": external.name}},
    }
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(definition))
    compose = ["docker-compose", "-p", project]
    subprocess.run([*compose, "up", "-d"], cwd=tmp_path, check=True, capture_output=True)
    app = TestApp(docker_client, project)
    app.containers["web"] = docker_client.containers.get(f"{project}_web_1")
    app.volumes["files"] = external
    made_apps.append(app)
    try:
        app.exec("web", ["sh", "-c", f"echo original > {FILES}/readme.txt"])
        backup_id = take_backup(docker_client, catalog, repository, project)
        damage(app)
        before = volume_names(docker_client)

        run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

        assert run.phase == RestorePhase.SUCCEEDED.value, run.message
        assert_restored(app)
        assert volume_names(docker_client) == before
        listed = subprocess.run([*compose, "ps"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
        assert f"{project}_web_1" in listed and " Up " in listed
    finally:
        subprocess.run([*compose, "down"], cwd=tmp_path, capture_output=True)
        app.containers.clear()  # docker-compose removed them; the external volume is the test's to remove


def test_a_volume_no_mount_matches_stops_the_restore_until_it_is_mapped(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    source = app_on_a_plain_volume(docker_client)
    made_apps.append(source)
    source.exec("web", ["sh", "-c", f"echo original > {FILES}/readme.txt"])
    backup_id = take_backup(docker_client, catalog, repository, source.name)
    (item,) = [i for i in catalog.items_of(backup_id) if i.kind == ItemKind.VOLUME]
    key = item.name.removeprefix("volumes/")
    target = app_on_a_plain_volume(docker_client, destination="/srv/elsewhere")
    made_apps.append(target)
    target.exec("web", ["sh", "-c", "echo mine > /srv/elsewhere/keep.txt"])
    before = volume_names(docker_client)

    refused = restore(catalog, repository, RestoreRequest(backup_id, target_app=target.name), docker_client)

    assert refused.phase == RestorePhase.FAILED.value
    assert refused.message.startswith("nothing was changed: snapshot volume ")
    assert f"{key} (mounted at web:{FILES})" in refused.message
    assert f"web:/srv/elsewhere (volume {target.name}-data)" in refused.message
    assert "--volume-map KEY=VOLUME" in refused.message and refused.safety_backup_id is None
    assert target.exec("web", ["cat", "/srv/elsewhere/keep.txt"]) == "mine\n"

    mapped = restore(
        catalog,
        repository,
        RestoreRequest(backup_id, target_app=target.name, volume_map={key: f"{target.name}-data"}),
        docker_client,
    )

    assert mapped.phase == RestorePhase.SUCCEEDED.value, mapped.message
    assert target.exec("web", ["ls", "/srv/elsewhere"]).split() == ["readme.txt"]
    assert source.exec("web", ["cat", f"{FILES}/readme.txt"]) == "original\n"  # the source is untouched
    assert volume_names(docker_client) == before
