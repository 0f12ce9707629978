"""Where each of a snapshot's volumes is written on restore: into what the target app's
containers mount at the destination the backup recorded for it, whatever made that volume
(Compose, `docker volume create`, an `external: true` volume). An explicit volume map comes
first; the Compose volume name is only the fallback, for snapshots made before mounts were
recorded. A restore never creates a volume for an app: a snapshot volume that matches
nothing stops the restore before anything changes, naming what the target mounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.apps.discovery import App
from controller.apps.docker_api import DockerClient
from controller.apps.volumes import volume_path
from controller.errors import RestoreFailed


def volume_targets(
    client: DockerClient, target: App, manifest: dict[str, Any], keys: list[str], volume_map: dict[str, str]
) -> list[tuple[str, Path]]:
    """(snapshot volume key, host path to make identical to it) for each key."""
    recorded = {entry["path"]: entry for entry in manifest.get("volumes", [])}
    targets, unmatched = [], []
    for key in keys:
        path = _target_of(client, target, key, recorded.get(f"volumes/{key}"), volume_map)
        if path is None:
            entry = recorded.get(f"volumes/{key}") or {}
            where = ", ".join(f"{m['service']}:{m['destination']}" for m in entry.get("mounts", []))
            unmatched.append(f"{key} (mounted at {where})" if where else key)
        else:
            targets.append((key, path))
    if unmatched:
        raise RestoreFailed(
            f"snapshot volume {', '.join(unmatched)} matches nothing app {target.name} mounts "
            f"(it mounts {target.describe_mounts()}); name the volume to write with --volume-map KEY=VOLUME "
            "(spec.volumeMap), or leave it out with --volume"
        )
    return targets


def _target_of(
    client: DockerClient, target: App, key: str, recorded: dict[str, Any] | None, volume_map: dict[str, str]
) -> Path | None:
    if key in volume_map:
        return volume_path(client, volume_map[key])
    for mount in (recorded or {}).get("mounts", []):
        path = target.path_mounted_at(mount["service"], mount["destination"])
        if path is not None:
            return path
    if recorded is not None and recorded.get("mounts"):
        return None  # the recorded mounts decide; a same-named volume elsewhere is not it
    return next((v.mountpoint for c in target.containers for v in c.volumes if v.key == key), None)
