"""Compose-like test apps made with the Docker SDK: containers and volumes carry the labels
`docker compose` gives them, which is all Lifeboat's discovery reads. Images are the local
ones scripts/docker-test-env.sh builds (no registry)."""

from __future__ import annotations

import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker import DockerClient

BUSYBOX = "lifeboat-test/busybox:1"
MARIADB = "lifeboat-test/mariadb:10.11"
POSTGRES = "lifeboat-test/postgres:15"
ROOT_PASSWORD = "root-pw-Qx7"
PG_PASSWORD = "pg-pw-Zr4"
TEST_LABEL = "io.lifeboat.test"  # on everything the suite creates, so that leftovers can be swept
# PID 1 ignores SIGTERM unless it traps it: exit at once so stops take no 10 s.
IDLE = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


def prepare_images() -> None:
    """Build the engine and images if needed (the same script `make test` runs)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "docker-test-env.sh"
    subprocess.run([str(script)], check=True, capture_output=True, text=True)


@dataclass
class TestApp:
    __test__ = False  # a helper, not a test class
    client: DockerClient
    name: str
    containers: dict[str, Any] = field(default_factory=dict)  # service → Container
    volumes: dict[str, Any] = field(default_factory=dict)  # key → Volume

    def labels(self, service: str) -> dict[str, str]:
        return {"com.docker.compose.project": self.name, "com.docker.compose.service": service, TEST_LABEL: "1"}

    def volume(self, key: str) -> str:
        volume = self.client.volumes.create(
            f"{self.name}_{key}",
            labels={"com.docker.compose.project": self.name, "com.docker.compose.volume": key, TEST_LABEL: "1"},
        )
        self.volumes[key] = volume
        return str(volume.name)

    def mountpoint(self, key: str) -> Path:
        return Path(self.client.api.inspect_volume(f"{self.name}_{key}")["Mountpoint"])

    def run(self, service: str, image: str, command: list[str], **options: Any) -> Any:
        container = self.client.containers.run(
            image, command, name=f"{self.name}-{service}-1", labels=self.labels(service), detach=True, **options
        )
        self.containers[service] = container
        return container

    def exec(self, service: str, command: list[str], environment: dict[str, str] | None = None) -> str:
        code, output = self.containers[service].exec_run(command, environment=environment)
        text = output.decode()
        assert code == 0, f"{command} in {service}: {text}"
        return text

    def state(self, service: str) -> str:
        self.containers[service].reload()
        return str(self.containers[service].status)

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attrs = self.client.api.inspect_container(self.containers[service].id)["State"]
            if attrs["Status"] == "running" and (attrs.get("Health") or {}).get("Status", "healthy") == "healthy":
                return
            time.sleep(0.3)
        raise AssertionError(f"{service} of {self.name} is not healthy: {attrs}")

    def remove(self) -> None:
        for container in self.containers.values():
            container.remove(force=True)
        for volume in self.volumes.values():
            volume.remove(force=True)


def sweep(client: DockerClient) -> None:
    """Remove what earlier, interrupted test runs left behind."""
    for container in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"label": TEST_LABEL}):
        volume.remove(force=True)


def health(test: list[str]) -> dict[str, Any]:
    return {"test": test, "interval": 500_000_000, "timeout": 5_000_000_000, "retries": 240}


def mariadb_sql(app: TestApp, sql: str, database: str = "wordpress") -> str:
    return app.exec(
        "db", ["mariadb", "-uroot", "--batch", "--skip-column-names", database, "-e", sql], {"MYSQL_PWD": ROOT_PASSWORD}
    )


def postgres_sql(app: TestApp, sql: str, database: str = "shop") -> str:
    return app.exec("db", ["psql", "-U", "shop", "-d", database, "-At", "-c", sql])


def wordpress_like(client: DockerClient, name: str | None = None) -> TestApp:
    """A web container writing into an uploads volume, and MariaDB on its own volume."""
    app = TestApp(client, name or f"wp{secrets.token_hex(3)}")
    app.run(
        "db",
        MARIADB,
        ["mariadb"],
        environment={"MARIADB_ROOT_PASSWORD": ROOT_PASSWORD, "MYSQL_DATABASE": "wordpress"},
        volumes={app.volume("dbdata"): {"bind": "/var/lib/mysql", "mode": "rw"}},
        healthcheck=health(["CMD-SHELL", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb-admin -uroot ping']),
    )
    app.run(
        "web",
        BUSYBOX,
        IDLE,
        volumes={app.volume("uploads"): {"bind": "/var/www/uploads", "mode": "rw"}},
        healthcheck=health(["CMD", "test", "-d", "/var/www/uploads"]),
    )
    app.wait_healthy("db")
    app.wait_healthy("web")
    return app


def postgres_app(client: DockerClient, config_dir: Path, name: str | None = None) -> TestApp:
    """PostgreSQL on a volume, and a web container with a bind-mounted config directory."""
    app = TestApp(client, name or f"shop{secrets.token_hex(3)}")
    app.run(
        "db",
        POSTGRES,
        ["postgres"],
        environment={"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": PG_PASSWORD, "POSTGRES_DB": "shop"},
        volumes={app.volume("pgdata"): {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
        healthcheck=health(["CMD", "pg_isready", "-U", "shop", "-d", "shop"]),
    )
    config_dir.mkdir(parents=True, exist_ok=True)
    app.run(
        "web",
        BUSYBOX,
        IDLE,
        volumes={str(config_dir): {"bind": "/etc/shop", "mode": "rw"}},
    )
    app.wait_healthy("db")
    return app
