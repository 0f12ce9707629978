"""The container image and examples/deploy/compose.yaml, for real: the Dockerfile is built
(on a local Debian bookworm, as there is no registry here), then docker-compose runs the
example next to a WordPress-like app. Through the published API port a backup is taken
and restored, and the status appears in the example's resource files."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from docker import DockerClient

from tests.support.api_stack import poll
from tests.support.docker_apps import TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes
from tests.support.required import skip_or_fail

ROOT = Path(__file__).parents[2]
IMAGE = "lifeboat-test/lifeboat:ci"
BASE = "lifeboat-test/debian:bookworm"  # scripts/docker-test-env.sh
# This machine reaches PyPI through a TLS-inspecting proxy; its CA is given to the build stage only.
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")


def run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command[:4])}…: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def image(docker_client: DockerClient) -> str:
    if shutil.which("docker-compose") is None:
        skip_or_fail("docker", "docker-compose is not installed (scripts/docker-test-env.sh installs it)")
    extra_ca = "".join(path.read_text() for path in sorted(EXTRA_CA_DIR.glob("*.crt")))
    command = ["docker", "build", "--quiet", "--build-arg", f"BASE={BASE}", "--tag", IMAGE, str(ROOT)]
    if extra_ca:
        command[3:3] = ["--build-arg", f"EXTRA_CA_CERTS={extra_ca}"]
    run(command, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return IMAGE


def in_image(image: str, *command: str) -> str:
    return run(["docker", "run", "--rm", "--entrypoint", command[0], image, *command[1:]])


def test_the_image_runs_lifeboat_unprivileged_with_the_database_clients(image: str) -> None:
    assert in_image(image, "id", "-u").strip() != "0"
    assert "PostgreSQL" in in_image(image, "pg_dump", "--version")
    assert "psql" in in_image(image, "psql", "--version")
    assert "MariaDB" in in_image(image, "mariadb-dump", "--version")
    assert "mariadb" in in_image(image, "mariadb", "--version")
    # The entrypoint is the CLI; the sources stayed in the build stage (in_image fails on a non-zero exit).
    assert "controller" in run(["docker", "run", "--rm", image, "--help"])
    in_image(image, "test", "!", "-e", "/src")
    # With a read-only root filesystem, the data directory (a volume) is where writes go.
    listed = run(["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", image, "get", "storages", "-o", "json"])
    assert yaml.safe_load(listed) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Deployment:
    """examples/deploy copied into a temporary folder and run as a Compose project."""

    def __init__(self, folder: Path, project: str, env: dict[str, str]) -> None:
        self.folder, self.project, self.env = folder, project, env

    def compose(self, *arguments: str) -> str:
        return run(["docker-compose", "-p", self.project, *arguments], cwd=self.folder, env=self.env)

    def wait_healthy(self, client: DockerClient, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            (found,) = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={self.project}"})
            state = client.api.inspect_container(found.id)["State"]
            if (state.get("Health") or {}).get("Status") == "healthy":
                return
            assert state["Status"] == "running", self.compose("logs", "--no-color")
            assert time.monotonic() < deadline, f"not healthy: {state.get('Health')}"
            time.sleep(0.5)


@pytest.fixture
def deployment(tmp_path: Path, image: str) -> Iterator[Deployment]:
    folder = tmp_path / "deploy"
    shutil.copytree(ROOT / "examples" / "deploy", folder)
    backups = tmp_path / "backups"
    backups.mkdir()
    storage = folder / "resources" / "storage.yaml"
    storage.write_text(storage.read_text().replace("/srv/lifeboat-backups", str(backups)))
    (folder / "passphrase").write_text(secrets.token_urlsafe(24))
    (folder / "lifeboat.env").write_text("")
    env = {
        **os.environ,
        "LIFEBOAT_IMAGE": image,
        "LIFEBOAT_HOSTNAME": f"docker-{secrets.token_hex(3)}",
        "LIFEBOAT_API_PORT": str(free_port()),
        "LIFEBOAT_BACKUP_DIR": str(backups),
    }
    deployed = Deployment(folder, f"lbdeploy{secrets.token_hex(3)}", env)
    try:
        yield deployed
    finally:
        deployed.compose("down", "--volumes", "--timeout", "5")


def test_compose_example_backs_up_and_restores_an_app_next_to_it(
    deployment: Deployment, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    policies = deployment.folder / "resources" / "policies.yaml"
    policies.write_text(policies.read_text().replace("wordpress001", app.name))
    mariadb_sql(app, "CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1), (2);")
    photo = random_bytes(3, 200_000)
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(photo)

    deployment.compose("up", "-d")
    deployment.wait_healthy(docker_client)
    key = deployment.compose("exec", "-T", "lifeboat", "lifeboat", "apikey", "create", "tester").strip()
    port = deployment.env["LIFEBOAT_API_PORT"]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=300)

    taken = client.post(f"/api/v1/backups/{app.name}?wait=true", json={})
    assert taken.status_code == 200, taken.text
    backup = taken.json()["data"]
    assert backup["status"] == "completed" and backup["policy"] is None
    items = client.get(f"/api/v1/backups/{backup['backup_id']}").json()["data"]["items"]
    assert {item["name"] for item in items} >= {"volumes/uploads", "databases/db.sql"}
    # The row names the Docker host given to the container, not the container's own name.
    rows = yaml.safe_load(deployment.compose("exec", "-T", "lifeboat", "lifeboat", "get", "backups", "-o", "json"))
    assert [row["host"] for row in rows if row["backup_id"] == backup["backup_id"]] == [
        deployment.env["LIFEBOAT_HOSTNAME"]
    ]

    (app.mountpoint("uploads") / "photo.jpg").write_bytes(b"overwritten")
    mariadb_sql(app, "DROP TABLE posts")
    accepted = client.post(f"/api/v1/backups/{backup['backup_id']}/restore", json={"safety_backup": True})
    assert accepted.status_code == 202, accepted.text
    done = poll(client, accepted.json()["data"]["url"], {"Succeeded", "Failed", "RolledBack"}, "phase")
    assert done["phase"] == "Succeeded", done
    assert (app.mountpoint("uploads") / "photo.jpg").read_bytes() == photo
    assert mariadb_sql(app, "SELECT COUNT(*) FROM posts") == "2\n"
    assert app.state("web") == "running" and app.state("db") == "running"

    # The controller wrote the policy's status into the example's resource file.
    status = yaml.safe_load(policies.read_text())["status"]
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True", status
    assert "nextRunAt" in status
    # The passphrase reached it as a Compose secret file only.
    logs = deployment.compose("logs", "--no-color")
    assert (deployment.folder / "passphrase").read_text() not in logs + policies.read_text()
