"""What an app is made of, besides its data: the Compose project (name, folder, compose and
env files), each service's image (reference, ID, registry digests), the networks and
volumes it uses, and each container's creation settings. A backup records it so that a
restore can make the app again on a host that never had it (apps/recreate.py).

The record is plain JSON-able data: it goes into the (encrypted) snapshot as
app/definition.json. It holds the containers' environment, so it is never shown whole:
`summary()` is what `describe backup` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controller.apps.discovery import App
from controller.apps.docker_api import DockerClient, docker_errors

WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_FILES_LABEL = "com.docker.compose.project.config_files"
ENVIRONMENT_FILE_LABEL = "com.docker.compose.project.environment_file"
PROJECT_FILE_LIMIT = 1024 * 1024  # project-folder files over this size are left out (named in the backup's notes)
BUILT_IN_NETWORKS = {"bridge", "host", "none"}
# The parts of `docker inspect`'s Config a container is created from again; the rest (Hostname,
# the image's own defaults merged in) the engine fills in.
_CONFIG_KEYS = (
    "User",
    "Env",
    "Cmd",
    "Entrypoint",
    "Image",
    "Labels",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "StopSignal",
    "StopTimeout",
    "Tty",
    "OpenStdin",
    "Domainname",
)


@dataclass
class ImageRecord:
    reference: str  # as the containers name it ("wordpress:6.4", "lifeboat-test/app:1")
    image_id: str  # "sha256:..."
    digests: list[str]  # "repo@sha256:...": a registry can give the image back
    saved: str | None = None  # the image's stream in the snapshot (images/ID.tar), when saved


@dataclass
class ContainerRecord:
    name: str
    service: str
    config: dict[str, Any]  # the Docker API's container-create body (Config keys + HostConfig)
    networks: dict[str, list[str]]  # network → aliases


@dataclass
class AppDefinition:
    project: str
    working_dir: str | None  # the Compose project's folder; None for containers not made by Compose
    config_files: list[str]
    environment_files: list[str]
    images: list[ImageRecord]
    containers: list[ContainerRecord]
    networks: list[dict[str, Any]]  # name, driver, options, labels, internal, attachable
    volumes: list[dict[str, Any]]  # name, driver, options, labels
    services: dict[str, str] = field(default_factory=dict)  # service → image reference

    @property
    def made_by_compose(self) -> bool:
        return self.working_dir is not None and bool(self.config_files)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppDefinition:
        return cls(
            **{
                **data,
                "images": [ImageRecord(**i) for i in data["images"]],
                "containers": [ContainerRecord(**c) for c in data["containers"]],
            }
        )

    def host_paths_outside(self, folder: str | None) -> list[str]:
        """Bind-mounted host paths outside the project folder, as "CONTAINER: PATH": a clone
        would share them with its source."""
        shared = []
        for container in self.containers:
            host = container.config["HostConfig"]
            sources = [b.split(":", 1)[0] for b in host.get("Binds") or []]
            sources += [m["Source"] for m in host.get("Mounts") or [] if m.get("Type") == "bind"]
            for source in sources:
                path = Path(source)
                if path.is_absolute() and (folder is None or Path(folder) not in [path, *path.parents]):
                    shared.append(f"{container.name}: {source}")
        return shared

    def summary(self) -> dict[str, Any]:
        """What describe shows: no environment, no settings."""
        return {
            "project": self.project,
            "folder": self.working_dir,
            "compose_files": self.config_files,
            "services": self.services,
            "images": [
                {"reference": i.reference, "id": i.image_id[:19], "from": "backup" if i.saved else "registry"}
                for i in self.images
            ],
            "networks": [n["name"] for n in self.networks],
        }


def capture_definition(client: DockerClient, app: App) -> AppDefinition:
    """The app's definition as the engine and its Compose labels describe it now."""
    labels = app.containers[0].labels
    working_dir = labels.get(WORKING_DIR_LABEL)
    with docker_errors(f"inspecting the containers of app {app.name!r}"):
        inspected = [client.api.inspect_container(c.id) for c in app.containers]
        images = _images(client, inspected)
        network_names = sorted(
            {n for attrs in inspected for n in (attrs["NetworkSettings"].get("Networks") or {})} - BUILT_IN_NETWORKS
        )
        networks = [_network(client.api.inspect_network(n)) for n in network_names]
        volume_names = sorted({v.name for c in app.containers for v in c.volumes})
        volumes = [_volume(client.api.inspect_volume(v)) for v in volume_names]
    containers = [_container_record(c.service, attrs) for c, attrs in zip(app.containers, inspected, strict=True)]
    return AppDefinition(
        project=app.name,
        working_dir=working_dir,
        config_files=_listed(labels.get(CONFIG_FILES_LABEL), working_dir),
        environment_files=_environment_files(labels, working_dir),
        images=images,
        containers=containers,
        networks=networks,
        volumes=volumes,
        services={c.service: c.image for c in app.containers},
    )


def project_skips(definition: AppDefinition, app: App) -> frozenset[Path]:
    """What of the project folder is not its definition: the bind-mounted directories (their
    data is backed up as mounts) and the .git folder."""
    if definition.working_dir is None:
        return frozenset()
    folder = Path(definition.working_dir)
    skips = {folder / ".git"}
    skips |= {b.source for c in app.containers for b in c.binds if b.source.is_dir() and folder in b.source.parents}
    return frozenset(skips)


def outside_files(definition: AppDefinition) -> list[Path]:
    """Compose and env files kept outside the project folder (`-f /elsewhere/compose.yml`)."""
    if definition.working_dir is None:
        return []
    folder = Path(definition.working_dir)
    files = [Path(f) for f in definition.config_files + definition.environment_files]
    return [f for f in files if folder not in f.parents and f.is_file()]


def _listed(value: str | None, working_dir: str | None) -> list[str]:
    if not value:
        return []
    base = Path(working_dir or "/")
    return [str(base / item) for item in value.split(",") if item]


def _environment_files(labels: dict[str, str], working_dir: str | None) -> list[str]:
    listed = _listed(labels.get(ENVIRONMENT_FILE_LABEL), working_dir)
    if not listed and working_dir is not None and (Path(working_dir) / ".env").is_file():
        listed = [str(Path(working_dir) / ".env")]  # docker-compose 1.x does not label it
    return listed


def _images(client: DockerClient, inspected: list[dict[str, Any]]) -> list[ImageRecord]:
    records: dict[str, ImageRecord] = {}
    for attrs in inspected:
        image_id = attrs["Image"]
        if image_id not in records:
            image = client.api.inspect_image(image_id)  # type: ignore[no-untyped-call]
            records[image_id] = ImageRecord(attrs["Config"]["Image"], image_id, list(image.get("RepoDigests") or []))
    return sorted(records.values(), key=lambda r: r.reference)


def _network(attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": attrs["Name"],
        "driver": attrs.get("Driver") or "bridge",
        "options": attrs.get("Options") or {},
        "labels": attrs.get("Labels") or {},
        "internal": bool(attrs.get("Internal")),
        "attachable": bool(attrs.get("Attachable")),
    }


def _volume(attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": attrs["Name"],
        "driver": attrs.get("Driver") or "local",
        "options": attrs.get("Options") or {},
        "labels": attrs.get("Labels") or {},
    }


def _container_record(service: str, attrs: dict[str, Any]) -> ContainerRecord:
    config = {key: attrs["Config"][key] for key in _CONFIG_KEYS if attrs["Config"].get(key) is not None}
    host_config = dict(attrs.get("HostConfig") or {})
    networks = attrs["NetworkSettings"].get("Networks") or {}
    return ContainerRecord(
        name=attrs["Name"].lstrip("/"),
        service=service,
        config={**config, "HostConfig": host_config},
        networks={
            name: [a for a in (endpoint.get("Aliases") or []) if not attrs["Id"].startswith(a)]
            for name, endpoint in networks.items()
        },
    )
