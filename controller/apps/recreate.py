"""Make an app's containers, volumes and networks again from its recorded definition: with
the Compose CLI in the project folder when the app was a Compose project and a CLI is
installed (so `docker-compose ps`, `up` and `down` manage it afterwards), else through the
Docker API from each container's recorded creation settings. Containers are created
stopped: the restore writes the data first, then starts them (`start_app`).

A clone (another project name) gets its own volumes and networks, and loses its published
host ports unless asked to keep them: they would collide with the source's."""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.apps.definition import BUILT_IN_NETWORKS, AppDefinition, ContainerRecord
from controller.apps.discovery import PROJECT_LABEL, VOLUME_LABEL
from controller.apps.docker_api import DockerClient, docker_errors
from controller.apps.quiesce import wait_until_up
from controller.errors import RestoreFailed

_COMPOSE_TIMEOUT = 600


def compose_cli() -> list[str] | None:
    """`docker compose` (v2) when it answers, else `docker-compose`; None when neither is installed."""
    docker = shutil.which("docker")
    if docker is not None:
        answered = subprocess.run([docker, "compose", "version"], capture_output=True, check=False, timeout=60)
        if answered.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


@dataclass
class ComposeProject:
    """The Compose CLI run for one project: `-p NAME -f FILE ...` in its folder."""

    cli: list[str]
    name: str
    folder: Path
    files: list[Path]

    def run(self, *arguments: str) -> None:
        command = [*self.cli, "-p", self.name, *[a for f in self.files for a in ("-f", str(f))], *arguments]
        try:
            done = subprocess.run(
                command, cwd=self.folder, capture_output=True, text=True, check=False, timeout=_COMPOSE_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise RestoreFailed(f"{' '.join(command[: len(self.cli)])} {' '.join(arguments)}: {err}") from None
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise RestoreFailed(
                f"{' '.join(self.cli)} {' '.join(arguments)} in {self.folder} exited with {done.returncode}: {tail}"
            )


def create_with_compose(project: ComposeProject) -> None:
    """Containers, volumes and networks made by Compose, stopped (changed ones recreated)."""
    project.run("up", "--no-start")


def create_with_api(
    client: DockerClient, definition: AppDefinition, project: str, keep_ports: bool, replace: bool
) -> None:
    """The recorded networks, volumes and containers, under `project` (a clone when it is not
    the recorded name). `replace`: the project's containers are removed first; volumes and
    networks that exist are used as they are."""
    names = _Renames(definition, project)
    if replace:
        remove_containers(client, project)
    with docker_errors(f"creating the networks of app {project!r}"):
        existing = {n["Name"] for n in client.api.networks()}
        for network in definition.networks:
            name = names.network(network["name"])
            if name not in existing:
                client.api.create_network(
                    name,
                    driver=network["driver"],
                    options=network["options"] or None,
                    internal=network["internal"],
                    attachable=network["attachable"],
                    labels=names.labels(network["labels"]),
                )
    with docker_errors(f"creating the volumes of app {project!r}"):
        for volume in definition.volumes:
            client.api.create_volume(
                names.volume(volume),
                driver=volume["driver"],
                driver_opts=volume["options"] or None,
                labels=names.labels(volume["labels"]),
            )
    for record in definition.containers:
        _create_container(client, record, names, keep_ports or not names.cloned)


def start_app(client: DockerClient, project: str, compose: ComposeProject | None) -> None:
    """Start every container of the app (Compose orders them by depends_on), then wait until
    they run and their health checks pass."""
    if compose is not None:
        compose.run("up", "-d")
    with docker_errors(f"starting app {project!r}"):
        found = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
        if compose is None:
            for container in sorted(found, key=lambda c: c["Names"][0]):
                client.api.start(container["Id"])
    for container in found:
        wait_until_up(client, container["Id"])


def stop_app(client: DockerClient, project: str) -> None:
    """Every running container of the app stopped: before its definition is replaced."""
    with docker_errors(f"stopping app {project!r}"):
        for container in client.api.containers(filters={"label": f"{PROJECT_LABEL}={project}"}):
            client.api.stop(container["Id"])


def remove_containers(client: DockerClient, project: str) -> None:
    """The project's containers removed (its volumes kept): before the API makes them again."""
    with docker_errors(f"removing the containers of app {project!r}"):
        for container in client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}):
            client.api.remove_container(container["Id"], force=True)


def remove_project(client: DockerClient, project: str) -> None:
    """Every container, volume and network labelled as the project's: a drill's clone gone."""
    remove_containers(client, project)
    label = {"label": f"{PROJECT_LABEL}={project}"}
    with docker_errors(f"removing the volumes and networks of {project!r}"):
        for volume in client.api.volumes(filters=label).get("Volumes") or []:
            client.api.remove_volume(volume["Name"], force=True)
        for network in client.api.networks(filters=label):
            client.api.remove_network(network["Id"])


class _Renames:
    """Names under the new project: `SOURCE_x`/`SOURCE-x` become `NEW_x`/`NEW-x`, others get the
    prefix; networks and volumes of other projects (external ones) are shared, not renamed."""

    def __init__(self, definition: AppDefinition, project: str) -> None:
        self.source, self.project = definition.project, project
        self.cloned = project != definition.project
        self._volumes = {v["name"]: self.volume(v) for v in definition.volumes}
        self._own_networks = {
            n["name"] for n in definition.networks if n["labels"].get(PROJECT_LABEL) == definition.project
        }

    def name(self, name: str) -> str:
        if not self.cloned:
            return name
        for separator in ("_", "-"):
            if name.startswith(self.source + separator):
                return self.project + separator + name[len(self.source) + 1 :]
        return f"{self.project}_{name}"

    def volume(self, volume: dict[str, Any]) -> str:
        key = volume["labels"].get(VOLUME_LABEL)
        return f"{self.project}_{key}" if self.cloned and key else self.name(volume["name"])

    def network(self, name: str) -> str:
        return self.name(name) if name in self._own_networks else name

    def labels(self, labels: dict[str, str]) -> dict[str, str]:
        return {**labels, PROJECT_LABEL: self.project} if PROJECT_LABEL in labels else dict(labels)

    def binds(self, binds: list[str]) -> list[str]:
        renamed = []
        for bind in binds:
            source, _, rest = bind.partition(":")
            renamed.append(f"{self._volumes.get(source, source)}:{rest}")
        return renamed

    def mounts(self, mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**m, "Source": self._volumes.get(m.get("Source", ""), m.get("Source"))} for m in mounts]


def _create_container(client: DockerClient, record: ContainerRecord, names: _Renames, keep_ports: bool) -> None:
    body = copy.deepcopy(record.config)
    host = body["HostConfig"]
    body["Labels"] = names.labels(body.get("Labels") or {})
    host["Binds"] = names.binds(host.get("Binds") or []) or None
    host["Mounts"] = names.mounts(host.get("Mounts") or []) or None
    if not keep_ports:
        host["PortBindings"], host["PublishAllPorts"] = {}, False
    networks = {names.network(n): aliases for n, aliases in record.networks.items()}
    mode = host.get("NetworkMode") or "default"
    host["NetworkMode"] = names.network(mode) if mode in record.networks else mode
    first = next((n for n in networks if n == host["NetworkMode"]), next(iter(networks), None))
    if first is not None and first not in BUILT_IN_NETWORKS:
        body["NetworkingConfig"] = {"EndpointsConfig": {first: {"Aliases": networks[first]}}}
    name = names.name(record.name)
    with docker_errors(f"creating container {name}"):
        created = client.api.create_container_from_config(body, name)  # type: ignore[no-untyped-call]
        for network, aliases in networks.items():
            if network != first and network not in BUILT_IN_NETWORKS:
                client.api.connect_container_to_network(created["Id"], network, aliases=aliases or None)
