"""A Docker volume by name, for a restore told where to write a snapshot's volume."""

from __future__ import annotations

from pathlib import Path

from docker import DockerClient

from controller.apps.docker_api import docker_errors


def volume_path(client: DockerClient, name: str) -> Path:
    """The host path of the volume's data. Raises LifeboatError when there is no such volume."""
    with docker_errors(f"finding volume {name!r}"):
        return Path(client.api.inspect_volume(name)["Mountpoint"])
