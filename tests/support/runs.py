"""The backup and restore runs on an already-open repository, as a CLI command runs them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.catalog.models import Backup, RestoreRun
from controller.reconciler.backup_run import BackupRequest, BackupRunner
from controller.reconciler.restore_run import RestoreRequest, RestoreRunner
from controller.reconciler.runtime import OpenedRepository, Runtime, no_docker, no_secrets, utc_now
from controller.repository.repository import Repository
from controller.resources.meta import SecretRef


def runtime_for(
    catalog: Catalog,
    repository: Repository,
    client: DockerClient | None = None,
    clock: Callable[[], datetime] = utc_now,
    read_secret: Callable[[SecretRef], str] = no_secrets,
) -> Runtime:
    return Runtime(
        catalog,
        OpenedRepository(repository),
        docker=(lambda: client) if client is not None else no_docker,
        clock=clock,
        read_secret=read_secret,
        retry_wait=0.05,
    )


def back_up(
    catalog: Catalog,
    repository: Repository,
    request: BackupRequest,
    client: DockerClient | None = None,
    **options: object,
) -> Backup:
    return BackupRunner(runtime_for(catalog, repository, client, **options)).run(request)  # type: ignore[arg-type]


def restore(catalog: Catalog, repository: Repository, request: RestoreRequest, client: DockerClient) -> RestoreRun:
    return RestoreRunner(runtime_for(catalog, repository, client)).run(request)
