"""The Docker engine connection. docker's exceptions never leave controller/apps/: an
unreachable engine or a 5xx answer is DockerUnavailable (transient), the rest a
LifeboatError that says what was being done."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import docker
from docker import DockerClient as DockerClient  # the client type the runs pass around
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import RequestException

from controller.errors import DockerUnavailable, LifeboatError


def connect(base_url: str | None = None, timeout: int = 120) -> DockerClient:
    """A client for the engine at `base_url` (default: DOCKER_HOST, else the local socket)."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
        client.ping()
    except (DockerException, RequestException) as err:
        raise DockerUnavailable(f"the Docker engine at {url} is not reachable ({err.__class__.__name__})") from None
    return client


@contextlib.contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Translate the docker library's errors raised while doing `what`."""
    try:
        yield
    except NotFound as err:
        raise LifeboatError(f"{what}: {err.explanation or 'not found'}") from None
    except APIError as err:
        if err.is_server_error():
            raise DockerUnavailable(f"{what}: the Docker engine answered {err.status_code}") from None
        raise LifeboatError(f"{what}: {err.explanation or err}") from None
    except (DockerException, RequestException) as err:
        raise DockerUnavailable(f"{what}: the Docker engine is not reachable ({err.__class__.__name__})") from None
