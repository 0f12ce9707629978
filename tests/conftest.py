"""Session-wide real services for every test tier (started here, or skipped with the reason)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from docker import DockerClient

from tests.support.docker_apps import TestApp, prepare_images, sweep
from tests.support.postgres import postgres_server
from tests.support.required import skip_or_fail
from tests.support.seaweedfs import S3Endpoint, seaweedfs_server

# Every repository a test opens, in this process or in a command it runs, keeps its local
# copy of snapshots, index files and tree packs here, never in the user's ~/.cache.
os.environ["LIFEBOAT_CACHE_DIR"] = tempfile.mkdtemp(prefix="lifeboat-test-cache-")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except (FileNotFoundError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", "") or str(err)
        skip_or_fail("postgres", detail.strip()[-300:])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    try:
        with seaweedfs_server() as endpoint:
            yield endpoint
    except (FileNotFoundError, RuntimeError) as err:
        skip_or_fail("s3", str(err)[-300:])


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    """The Docker engine with the test images (built by scripts/docker-test-env.sh if missing)."""
    from controller.apps.docker_api import connect
    from controller.errors import DockerUnavailable

    try:
        prepare_images()
        client = connect()
        sweep(client)
    except (FileNotFoundError, subprocess.CalledProcessError, DockerUnavailable) as err:
        detail = getattr(err, "stderr", "") or str(err)
        skip_or_fail("docker", str(detail).strip()[-300:])
    yield client
    sweep(client)
    client.close()


@pytest.fixture
def made_apps(docker_client: DockerClient) -> Iterator[list[TestApp]]:
    """Apps a test creates; removed with their volumes afterwards, whatever happened."""
    apps: list[TestApp] = []
    yield apps
    for app in apps:
        app.remove()
