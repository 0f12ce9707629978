"""What an app is, read from the Docker engine: a Compose project's containers, their named
volumes and bind mounts, and the databases among them with their credentials."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker import DockerClient

from controller.apps.datasources import Credentials, DataSource, datasource_for, engine_for_image
from controller.apps.docker_api import docker_errors
from controller.errors import AppNotFound, InvalidConfig
from controller.resources.backup_policy import DatabaseOverride
from controller.resources.meta import SecretRef

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
VOLUME_LABEL = "com.docker.compose.volume"
DATABASE_LABEL = "lifeboat.database"  # engine of a container the image name does not reveal


@dataclass(frozen=True)
class VolumeMount:
    name: str  # the Docker volume ("wordpress001_uploads")
    key: str  # its Compose name ("uploads"): how snapshots name it, so clones map onto it
    mountpoint: Path  # on the host
    destination: str  # inside the container


@dataclass(frozen=True)
class BindMount:
    source: Path  # on the host
    destination: str  # inside the container


@dataclass
class AppContainer:
    id: str
    name: str
    service: str
    image: str
    state: str  # running, paused, exited, created ...
    has_healthcheck: bool
    environment: dict[str, str] = field(repr=False)
    labels: dict[str, str]
    volumes: list[VolumeMount]
    binds: list[BindMount]

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class Database:
    service: str
    container: AppContainer
    source: DataSource
    credentials: Credentials
    names: list[str]  # databases to dump; all when empty


@dataclass
class App:
    name: str
    containers: list[AppContainer]
    databases: list[Database]

    def container_for(self, service: str) -> AppContainer | None:
        return next((c for c in self.containers if c.service == service), None)

    def path_mounted_at(self, service: str, destination: str) -> Path | None:
        """The host path (a volume's data or a bind mount's source) that the service's
        container mounts at `destination`; None when it mounts nothing there."""
        container = self.container_for(service)
        if container is None:
            return None
        for volume in container.volumes:
            if volume.destination == destination:
                return volume.mountpoint
        return next((bind.source for bind in container.binds if bind.destination == destination), None)

    def describe_mounts(self) -> str:
        """What the app's containers mount, for messages: "web:/data (volume x_data), ..."."""
        mounts = [f"{c.service}:{v.destination} (volume {v.name})" for c in self.containers for v in c.volumes]
        mounts += [f"{c.service}:{b.destination} (bind {b.source})" for c in self.containers for b in c.binds]
        return ", ".join(mounts) or "nothing"

    def database_volume_names(self) -> set[str]:
        """Volumes holding a dumped database's files: the dump is their copy, not the files."""
        return {volume.name for database in self.databases for volume in database.container.volumes}

    def volumes(self) -> list[VolumeMount]:
        """The app's named volumes, each once, database volumes left out."""
        seen: dict[str, VolumeMount] = {}
        skipped = self.database_volume_names()
        for container in self.containers:
            for volume in container.volumes:
                if volume.name not in skipped:
                    seen.setdefault(volume.name, volume)
        return sorted(seen.values(), key=lambda v: v.key)


def _container(attrs: dict[str, Any]) -> AppContainer:
    config, labels = attrs.get("Config") or {}, (attrs.get("Config") or {}).get("Labels") or {}
    environment = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    volumes, binds = [], []
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "volume" and mount.get("Name"):
            volumes.append(VolumeMount(mount["Name"], mount["Name"], Path(mount["Source"]), mount["Destination"]))
        elif mount.get("Type") == "bind":
            binds.append(BindMount(Path(mount["Source"]), mount["Destination"]))
    healthcheck = config.get("Healthcheck") or {}
    return AppContainer(
        id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        service=labels.get(SERVICE_LABEL) or attrs["Name"].lstrip("/"),
        image=config.get("Image") or "",
        state=(attrs.get("State") or {}).get("Status", "unknown"),
        has_healthcheck=bool(healthcheck.get("Test")) and healthcheck.get("Test") != ["NONE"],
        environment=environment,
        labels=labels,
        volumes=volumes,
        binds=binds,
    )


def list_app_names(client: DockerClient) -> list[str]:
    with docker_errors("listing containers"):
        containers = client.api.containers(all=True, filters={"label": PROJECT_LABEL})
    return sorted({c["Labels"][PROJECT_LABEL] for c in containers})


def app_exists(client: DockerClient, name: str) -> bool:
    with docker_errors(f"listing the containers of app {name!r}"):
        return bool(client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={name}"}, quiet=True))


def discover(
    client: DockerClient,
    name: str,
    overrides: list[DatabaseOverride] | None = None,
    read_secret: Callable[[SecretRef], str] | None = None,
) -> App:
    """The app `name` as it is now. `overrides` come from the policy (engine, names, user,
    password by reference), `read_secret` resolves those references."""
    with docker_errors(f"listing the containers of app {name!r}"):
        found = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={name}"})
        containers = [_container(client.api.inspect_container(c["Id"])) for c in found]
    if not containers:
        raise AppNotFound(f"no app {name!r}: no container has the label {PROJECT_LABEL}={name}")
    with docker_errors(f"inspecting the volumes of app {name!r}"):
        for container in containers:
            container.volumes = [_with_compose_key(client, v) for v in container.volumes]
    by_service = {o.service: o for o in overrides or []}
    for service in by_service:
        if not any(c.service == service for c in containers):
            raise InvalidConfig(f"app {name!r} has no service {service!r} (named in the policy's databases)")
    databases = []
    for container in sorted(containers, key=lambda c: c.service):
        database = _database(container, by_service.get(container.service), read_secret)
        if database is not None:
            databases.append(database)
    return App(name, sorted(containers, key=lambda c: c.service), databases)


def _with_compose_key(client: DockerClient, volume: VolumeMount) -> VolumeMount:
    labels = client.api.inspect_volume(volume.name).get("Labels") or {}
    key = labels.get(VOLUME_LABEL) or volume.name
    return VolumeMount(volume.name, key, volume.mountpoint, volume.destination)


def _database(
    container: AppContainer, override: DatabaseOverride | None, read_secret: Callable[[SecretRef], str] | None
) -> Database | None:
    engine = (
        (override.engine.value if override and override.engine else None)
        or container.labels.get(DATABASE_LABEL)
        or engine_for_image(container.image)
    )
    if engine is None:
        return None
    try:
        source = datasource_for(engine)
    except ValueError as err:
        raise InvalidConfig(f"container {container.name}: label {DATABASE_LABEL}: {err}") from None
    credentials = source.credentials_from(container.environment)
    if override is not None and (override.username or override.password):
        password = credentials.password if credentials else None
        password_file = credentials.password_file if credentials else None
        if override.password is not None:
            if read_secret is None:
                raise InvalidConfig(f"service {container.service}: a password reference needs a secret reader")
            password, password_file = read_secret(override.password), None
        username = override.username or (credentials.username if credentials else "")
        credentials = Credentials(username, password, password_file)
    if credentials is None:
        raise InvalidConfig(
            f"service {container.service} ({engine}): no credentials in the container's environment "
            "(neither the image's password variables nor their *_FILE forms); "
            "set databases[].username and databases[].password in the policy"
        )
    return Database(container.service, container, source, credentials, list(override.names) if override else [])
