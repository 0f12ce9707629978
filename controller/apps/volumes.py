"""Where a restore writes a snapshot's volume on this host."""

from __future__ import annotations

from pathlib import Path

from docker import DockerClient

from controller.apps.discovery import PROJECT_LABEL, VOLUME_LABEL
from controller.apps.docker_api import docker_errors


def volume_mountpoint(client: DockerClient, app: str, key: str) -> Path:
    """The app's volume with Compose name `key`, created (with Compose's labels) when the app
    has none."""
    with docker_errors(f"finding volume {key} of app {app}"):
        found = client.api.volumes(filters={"label": [f"{PROJECT_LABEL}={app}", f"{VOLUME_LABEL}={key}"]})
        volumes = found.get("Volumes") or []
        if not volumes:
            labels = {PROJECT_LABEL: app, VOLUME_LABEL: key}
            volumes = [client.api.create_volume(f"{app}_{key}", labels=labels)]
    return Path(volumes[0]["Mountpoint"])
