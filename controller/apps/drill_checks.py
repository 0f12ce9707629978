"""A restore drill's checks, run against the restored clone: a query's value, an HTTP
status, a file, a command. Each says what it found, so a failed drill names its cause."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import asdict, dataclass

from docker.errors import NotFound

from controller.apps.discovery import App, AppContainer
from controller.apps.docker_api import DockerClient, docker_errors
from controller.apps.exec import ExecCommand, failure_message, run
from controller.errors import LifeboatError
from controller.resources.backup_policy import CommandCheck, DrillCheck, FileCheck, HttpCheck, SqlCheck


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def run_check(client: DockerClient, app: App, check: DrillCheck, timeout: float) -> CheckResult:
    """The check's result; a check that cannot run (no such service, an engine without
    queries) fails with the reason."""
    try:
        passed, detail = _run(client, app, check, timeout)
    except LifeboatError as err:
        passed, detail = False, str(err)
    return CheckResult(check.named, passed, detail)


def _run(client: DockerClient, app: App, check: DrillCheck, timeout: float) -> tuple[bool, str]:
    if check.sql is not None:
        return _sql(client, app, check.sql, timeout)
    if check.http is not None:
        return _http(client, _container(app, check.http.service), check.http, timeout)
    if check.file is not None:
        return _file(client, _container(app, check.file.service), check.file)
    assert check.command is not None
    return _command(client, _container(app, check.command.service), check.command, timeout)


def _container(app: App, service: str) -> AppContainer:
    container = app.container_for(service)
    if container is None:
        raise LifeboatError(f"the clone has no service {service!r}")
    return container


def _sql(client: DockerClient, app: App, check: SqlCheck, timeout: float) -> tuple[bool, str]:
    database = next((d for d in app.databases if d.service == check.service), None)
    if database is None:
        raise LifeboatError(f"service {check.service!r} is not a database Lifeboat knows")
    inventory = database.source.inventory
    if inventory is None:
        raise LifeboatError(f"{database.source.engine} databases cannot be queried by a drill")
    command = inventory.query_command(database.credentials, check.database, check.query)
    result = run(client, database.container.id, command, timeout)
    if result.exit_code != 0:
        where = database.container.name
        return False, failure_message(f"the query exited with {result.exit_code}", result.stderr, where)
    value = result.stdout.decode("utf-8", "replace").strip()
    return value == check.expect, f"returned {value!r}, expected {check.expect!r}"


def _http(client: DockerClient, container: AppContainer, check: HttpCheck, timeout: float) -> tuple[bool, str]:
    """Asked from this host of the container's address on the clone's network."""
    with docker_errors(f"inspecting {container.name}"):
        networks = client.api.inspect_container(container.id)["NetworkSettings"]["Networks"] or {}
    address = next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), None)
    if address is None:
        raise LifeboatError(f"{container.name} has no address on a network")
    url = f"http://{address}:{check.port}{check.path}"
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, 30)) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError as err:
        return False, f"GET {url}: {err}"
    return status == check.expect_status, f"GET {url} answered {status}, expected {check.expect_status}"


def _file(client: DockerClient, container: AppContainer, check: FileCheck) -> tuple[bool, str]:
    """Through the engine (no tool needed in the image)."""
    with docker_errors(f"reading {check.path} in {container.name}"):
        try:
            stream, stat = client.api.get_archive(container.id, check.path)
        except NotFound:
            return False, f"{check.path} does not exist in {container.name}"
        for _ in stream:  # the archive itself is not needed
            break
    return True, f"{check.path} exists in {container.name} ({stat.get('size', 0)} bytes)"


def _command(client: DockerClient, container: AppContainer, check: CommandCheck, timeout: float) -> tuple[bool, str]:
    result = run(client, container.id, ExecCommand(list(check.command)), timeout)
    if result.exit_code == 0:
        return True, "exited with 0"
    return False, failure_message(f"exited with {result.exit_code}", result.stderr, container.name)
