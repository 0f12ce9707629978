"""Apps made by Debian's docker-compose from a real project folder (compose file, .env, a
bind-mounted config folder), for the whole-app tests: what Lifeboat must bring back is the
folder and the images as well as the data."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker import DockerClient

from tests.support.docker_apps import BUSYBOX, MARIADB, ROOT_PASSWORD, TEST_LABEL

COMPOSE_FILE = """\
version: "2.4"
services:
  db:
    image: {mariadb}
    command: ["mariadb"]
    environment:
      MARIADB_ROOT_PASSWORD: ${{DB_ROOT_PASSWORD}}
      MYSQL_DATABASE: wordpress
    volumes: ["dbdata:/var/lib/mysql"]
    labels: {{{label}: "1"}}
    healthcheck:
      test: ["CMD-SHELL", 'MYSQL_PWD="$$MARIADB_ROOT_PASSWORD" mariadb-admin -uroot ping']
      interval: 1s
      retries: 240
  web:
    image: ${{WEB_IMAGE}}
    command: ["sh", "-c", "{serve}trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    volumes: ["uploads:/var/www/uploads", "./config:/etc/site"]
    ports: ["127.0.0.1:${{WEB_PORT}}:80"]
    labels: {{{label}: "1"}}
volumes:
  dbdata: {{labels: {{{label}: "1"}}}}
  uploads: {{labels: {{{label}: "1"}}}}
"""


def build_web_image(client: DockerClient, folder: Path, tag: str, version: str) -> str:
    """A locally built image (no registry digest): the kind `include.images: auto` saves."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "version").write_text(version + "\n")
    (folder / "Dockerfile").write_text(f"FROM {BUSYBOX}\nCOPY version /version\nLABEL {TEST_LABEL}=1\n")
    client.images.build(path=str(folder), tag=tag, rm=True)
    return tag


@dataclass
class ComposeApp:
    __test__ = False
    client: DockerClient
    name: str
    folder: Path

    def compose(self, *arguments: str, folder: Path | None = None) -> str:
        done = subprocess.run(
            ["docker-compose", "-p", self.name, *arguments],
            cwd=folder or self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "COLUMNS": "300"},  # `ps` wraps its table at the terminal's width
        )
        assert done.returncode == 0, f"docker-compose {' '.join(arguments)}: {done.stderr}"
        return done.stdout

    def container(self, service: str) -> Any:
        found = self.client.containers.list(
            all=True,
            filters={"label": [f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]},
        )
        assert len(found) == 1, f"{self.name} has {len(found)} {service} container(s)"
        return found[0]

    def exec(self, service: str, command: list[str], environment: dict[str, str] | None = None) -> str:
        code, output = self.container(service).exec_run(command, environment=environment)
        assert code == 0, f"{command} in {service}: {output.decode()}"
        return str(output.decode())

    def sql(self, sql: str) -> str:
        command = ["mariadb", "-uroot", "--batch", "--skip-column-names", "wordpress", "-e", sql]
        return self.exec("db", command, {"MYSQL_PWD": ROOT_PASSWORD})

    def mountpoint(self, key: str) -> Path:
        return Path(self.client.api.inspect_volume(f"{self.name}_{key}")["Mountpoint"])

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.client.api.inspect_container(self.container("db").id)["State"]
            if (state.get("Health") or {}).get("Status") == "healthy":
                return
            time.sleep(0.3)
        raise AssertionError(f"db of {self.name} is not healthy")

    def remove(self) -> None:
        """Containers, volumes and network gone (the folder stays: it is the test's tmp_path)."""
        for container in self.client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={self.name}"}
        ):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters={"label": f"com.docker.compose.project={self.name}"}):
            volume.remove(force=True)
        for network in self.client.networks.list(filters={"label": f"com.docker.compose.project={self.name}"}):
            network.remove()


def blog_project(
    client: DockerClient, folder: Path, web_image: str, port: int, name: str | None = None, serve_http: bool = False
) -> ComposeApp:
    """A project folder (compose file, .env, config/) brought up by docker-compose, healthy.
    `serve_http`: the web service serves /var/www on port 80 (busybox httpd)."""
    app = ComposeApp(client, name or f"blog{secrets.token_hex(3)}", folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docker-compose.yml").write_text(
        COMPOSE_FILE.format(mariadb=MARIADB, label=TEST_LABEL, serve="httpd -p 80 -h /var/www; " if serve_http else "")
    )
    (folder / ".env").write_text(f"DB_ROOT_PASSWORD={ROOT_PASSWORD}\nWEB_IMAGE={web_image}\nWEB_PORT={port}\n")
    (folder / "config").mkdir(exist_ok=True)
    (folder / "config" / "site.conf").write_text("title = my blog\n")
    app.compose("up", "-d")
    app.wait_healthy()
    return app


def free_port() -> int:
    """A free loopback port for a published web port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
