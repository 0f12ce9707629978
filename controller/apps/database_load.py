"""Load a database dump into an app's database container: start it, wait until the server
answers, stream the dump into the engine's client, and stop it again if it was stopped."""

from __future__ import annotations

import time
from collections.abc import Iterable

from docker import DockerClient

from controller.apps.datasources.inventory import ServerInventory, parse_counts
from controller.apps.discovery import Database
from controller.apps.docker_api import docker_errors
from controller.apps.exec import ExecCommand, failure_message, feed, run
from controller.apps.quiesce import wait_until_up
from controller.errors import LifeboatError, RestoreFailed

READY_TIMEOUT_SECONDS = 180.0


def load_dump(client: DockerClient, database: Database, label: str, chunks: Iterable[bytes], was_running: bool) -> None:
    """Stream `chunks` (the dump named `label`) into the database. Raises RestoreFailed with
    the engine's own error when the import fails or the dump cannot be read."""
    container = database.container
    with docker_errors(f"starting {container.name} for the import"):
        client.api.start(container.id)
    wait_until_up(client, container.id)
    wait_ready(client, database)
    command = database.source.restore_command(database.credentials)
    try:
        dump = database.source.restore_input(database.credentials, iter(chunks))
        result = feed(client, container.id, command, dump)
    except LifeboatError as err:  # the dump could not be read from where it is kept
        raise RestoreFailed(f"importing {label} into {container.name}: {err}") from None
    if result.exit_code != 0:
        what = f"importing {label}: {command.shown()} exited with {result.exit_code}"
        raise RestoreFailed(failure_message(what, result.stderr, container.name))
    if not was_running:
        stop_container(client, database)


def stop_container(client: DockerClient, database: Database) -> None:
    """Stop the database container again after its import (it was stopped before)."""
    with docker_errors(f"stopping {database.container.name} after the import"):
        client.api.stop(database.container.id)


def server_databases(client: DockerClient, database: Database) -> set[str]:
    """The databases the server holds now (its own system databases included)."""
    inventory = _inventory(database)
    return set(_output(client, database, inventory.databases_command(database.credentials)).split())


def table_counts(client: DockerClient, database: Database, name: str) -> dict[str, int]:
    """Exact rows per table of database `name` in the server."""
    command = _inventory(database).count_command(database.credentials, name)
    return parse_counts(_output(client, database, command))


def drop_database(client: DockerClient, database: Database, name: str) -> None:
    _output(client, database, _inventory(database).drop_command(database.credentials, name))


def _inventory(database: Database) -> ServerInventory:
    if database.source.inventory is None:
        raise RestoreFailed(f"{database.source.engine} databases cannot be counted")
    return database.source.inventory


def _output(client: DockerClient, database: Database, command: ExecCommand) -> str:
    result = run(client, database.container.id, command, timeout=600)
    if result.exit_code != 0:
        what = f"{command.shown()} exited with {result.exit_code}"
        raise RestoreFailed(failure_message(what, result.stderr, database.container.name))
    return result.stdout.decode("utf-8", "replace")


def wait_ready(client: DockerClient, database: Database) -> None:
    """Until the server answers twice, a second apart: images that initialise an empty
    volume run a short-lived setup server first, which must not take the import."""
    command = database.source.ready_command(database.credentials)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    answered = 0
    while True:
        result = run(client, database.container.id, command, timeout=30)
        answered = answered + 1 if result.exit_code == 0 else 0
        if answered == 2:
            return
        if time.monotonic() > deadline:
            raise RestoreFailed(f"{database.container.name} does not accept connections: {result.stderr}")
        time.sleep(1.0 if answered else 0.5)
