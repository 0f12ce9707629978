"""The app itself put back from a backup, before its data: on a host that lacks it (a
disaster, a clone under another name) or on request (`--definition`: undo an upgrade).

Planned before anything changes: the definition recorded, a way to create the containers
(the Compose CLI for a Compose project, else the recorded settings), every image
obtainable (already here, saved in the backup, or pullable by its registry digest), a
project folder that does not hold other content, and for a clone no bind mount shared with
its source. Then: the project folder written, the images loaded or pulled, a clone's compose
files rewritten, the containers created stopped. The restore run then writes the data into
them, checks it, and starts the app."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from controller.apps.compose_files import rewrite_for_clone
from controller.apps.definition import AppDefinition, ImageRecord
from controller.apps.docker_api import DockerClient
from controller.apps.images import image_present, load_image, pull_image
from controller.apps.recreate import (
    ComposeProject,
    compose_cli,
    create_with_api,
    create_with_compose,
    stop_app,
)
from controller.errors import BackupNotFound, RestoreFailed
from controller.reconciler.snapshot_layout import OUTSIDE, PROJECT, read_definition
from controller.repository.comparer import Comparer
from controller.repository.file_reader import open_content
from controller.repository.records import Snapshot
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer, find_node

_CHUNK = 1024 * 1024
CLONE_OUTSIDE = ".lifeboat-outside"  # where a clone keeps its copy of compose files kept elsewhere


@dataclass
class RebuildOptions:
    project_dir: str | None = None  # where to write the project folder; default: where it was
    force: bool = False  # write over a project folder holding other content
    keep_ports: bool = False  # a clone keeps the source's published host ports
    replace: bool = False  # the app exists and its definition is put back (--definition)


@dataclass
class RebuildPlan:
    definition: AppDefinition
    snapshot: Snapshot  # the backup's, already checked readable
    project: str  # the app's name on this host (another one for a clone)
    folder: Path | None  # the project folder written (Compose projects)
    compose: ComposeProject | None  # None: containers made through the Docker API
    load: list[ImageRecord] = field(default_factory=list)  # saved in the backup, missing here
    pull: list[ImageRecord] = field(default_factory=list)  # missing here, pulled by digest
    options: RebuildOptions = field(default_factory=RebuildOptions)

    @property
    def cloned(self) -> bool:
        return self.project != self.definition.project

    def describe(self, done: bool = True) -> str:
        """ "app X recreated with docker-compose in F, 1 image(s) loaded from the backup" (done),
        or what would be done (a preview)."""
        how = f"with {' '.join(self.compose.cli)} in {self.folder}" if self.compose else "through the Docker API"
        verb = ("replaced" if self.options.replace else "recreated") if done else "would be put back"
        images = f", {len(self.load)} image(s) loaded from the backup" if self.load else ""
        images += f", {len(self.pull)} image(s) pulled by digest" if self.pull else ""
        return f"app {self.project} {verb} {how}{images}"


def plan_rebuild(
    client: DockerClient,
    repository: Repository,
    snapshot: Snapshot,
    backup_id: str,
    project: str,
    options: RebuildOptions,
) -> RebuildPlan:
    """Raises RestoreFailed, changing nothing, when the app cannot be put back."""
    definition = read_definition(repository, snapshot)
    if definition is None:
        raise RestoreFailed(
            f"backup {backup_id} does not hold its app's definition (taken before Lifeboat recorded it, or with "
            f"include.definition false): create app {project} first, then restore its data"
        )
    cloned = project != definition.project
    folder = _folder(definition, project, options)
    if cloned and (shared := definition.host_paths_outside(definition.working_dir)):
        raise RestoreFailed(
            f"a clone would share host paths with app {definition.project}: {', '.join(shared)}; "
            "restore into the app itself, or move that data into a volume or under the project folder"
        )
    compose = None
    cli = compose_cli() if definition.made_by_compose else None
    if definition.made_by_compose and folder is not None and cli is not None:
        compose = ComposeProject(cli, project, folder, _config_files(definition, folder, cloned))
    if folder is not None and not options.force and not options.replace and folder.is_dir() and any(folder.iterdir()):
        conflicts = Comparer(repository).conflicts(snapshot, PROJECT, folder)
        if conflicts:
            raise RestoreFailed(
                f"project folder {folder} holds other content ({', '.join(conflicts[:5])}); restore with "
                "--project-dir DIR to write it elsewhere, or --force to write over it"
            )
    plan = RebuildPlan(definition, snapshot, project, folder, compose, options=options)
    for image in definition.images:
        if image_present(client, image.image_id):
            continue
        if image.saved:
            plan.load.append(image)
        elif image.digests:
            plan.pull.append(image)
        else:
            raise RestoreFailed(
                f"image {image.reference} ({image.image_id}) is not on this host, not in backup {backup_id} "
                "(include.images) and has no registry digest; load or build it, then restore again"
            )
    return plan


def rebuild_app(client: DockerClient, repository: Repository, plan: RebuildPlan) -> None:
    """Project folder, images, containers (stopped)."""
    snapshot = plan.snapshot
    if plan.options.replace:
        stop_app(client, plan.project)
    if plan.folder is not None:
        Restorer(repository).restore(snapshot, plan.folder, subpath=PROJECT)
        _write_outside_files(repository, snapshot, plan)
    for image in plan.load:
        content = open_content(repository, find_node(repository, snapshot, image.saved or ""))
        load_image(client, image, iter(functools.partial(content.read, _CHUNK), b""))
    for image in plan.pull:
        pull_image(client, image)
    if plan.compose is not None:
        if plan.cloned:
            rewrite_for_clone(plan.compose.files, plan.options.keep_ports)
        create_with_compose(plan.compose)
    else:
        create_with_api(client, plan.definition, plan.project, plan.options.keep_ports, plan.options.replace)


def _folder(definition: AppDefinition, project: str, options: RebuildOptions) -> Path | None:
    """--project-dir, else where it was; a clone's beside its source's, named after the clone."""
    if options.project_dir:
        return Path(options.project_dir).absolute()
    if definition.working_dir is None:
        return None
    recorded = Path(definition.working_dir)
    return recorded if project == definition.project else recorded.parent / project


def _config_files(definition: AppDefinition, folder: Path, cloned: bool) -> list[Path]:
    """The compose files in the folder written; those kept elsewhere where they were (a clone:
    a copy in its folder, which it may rewrite)."""
    recorded = Path(definition.working_dir or "/")
    files = []
    for name in definition.config_files:
        path = Path(name)
        if recorded in path.parents:
            files.append(folder / path.relative_to(recorded))
        else:
            files.append(folder / CLONE_OUTSIDE / path.relative_to("/") if cloned else path)
    return files


def _write_outside_files(repository: Repository, snapshot: Snapshot, plan: RebuildPlan) -> None:
    assert plan.folder is not None
    outside = [Path(f) for f in plan.definition.config_files + plan.definition.environment_files]
    recorded = Path(plan.definition.working_dir or "/")
    for path in [p for p in outside if recorded not in p.parents]:
        place = plan.folder / CLONE_OUTSIDE / path.relative_to("/") if plan.cloned else path
        try:
            find_node(repository, snapshot, f"{OUTSIDE}{path}")
        except BackupNotFound:
            continue
        Restorer(repository).restore(snapshot, place.parent, subpath=f"{OUTSIDE}{path}")
