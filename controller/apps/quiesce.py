"""Pause or stop an app's running containers for a consistent copy, and always start them
again. Each container is recorded in a ledger (the catalog) before Lifeboat touches it and released
after it runs again, so that a Lifeboat killed in between leaves a record that `repair`
acts on: it resumes exactly the containers Lifeboat stopped, never others."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from docker import DockerClient

from controller.apps.discovery import AppContainer
from controller.apps.docker_api import docker_errors
from controller.errors import LifeboatError
from controller.host import Owner, host_name

HEALTH_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class QuiescedRecord:
    """A container Lifeboat paused or stopped, as the ledger keeps it until it runs again."""

    container_id: str
    container_name: str
    app: str
    action: str  # paused or stopped
    operation: str  # the backup or restore that did it
    owner: Owner
    since: datetime


class QuiesceLedger(Protocol):
    """Where quiesced containers are written down before they are touched (the catalog, in
    the runs): what a killed Lifeboat leaves there is what `repair` starts again."""

    def record(self, entry: QuiescedRecord) -> int:
        """Write the entry down; returns its id for release()."""
        ...

    def release(self, entry_id: int) -> None: ...

    def held_on(self, host: str) -> list[tuple[int, QuiescedRecord]]:
        """The entries of processes on `host`, oldest first."""
        ...


def wait_until_up(client: DockerClient, container_id: str, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Until the container runs and, when it has a health check, reports healthy."""
    deadline = time.monotonic() + timeout
    while True:
        with docker_errors(f"inspecting container {container_id[:12]}"):
            state = client.api.inspect_container(container_id)["State"]
        health = (state.get("Health") or {}).get("Status")
        if state.get("Status") == "running" and health in (None, "healthy"):
            return
        if state.get("Status") in ("exited", "dead"):
            raise LifeboatError(f"container {container_id[:12]} exited with code {state.get('ExitCode')}")
        if time.monotonic() > deadline:
            raise LifeboatError(f"container {container_id[:12]} is not healthy after {timeout:g} s ({health})")
        time.sleep(0.5)


def _resume(client: DockerClient, container_id: str, action: str) -> None:
    with docker_errors(f"starting container {container_id[:12]} again"):
        state = client.api.inspect_container(container_id)["State"]
        if state.get("Paused"):
            client.api.unpause(container_id)
        elif state.get("Status") != "running":
            client.api.start(container_id)


class Quiescer:
    """Quiesces the given containers on `quiesce()`; `resume()` undoes it (call it in a finally)."""

    def __init__(
        self,
        client: DockerClient,
        ledger: QuiesceLedger,
        app: str,
        containers: list[AppContainer],
        action: str,
        operation: str,
        clock: Callable[[], datetime],
        stop_timeout: int = 30,
        wait_until_up: bool = True,
    ) -> None:
        """`wait_until_up`: resume() waits for each container to run and pass its health check."""
        if action not in ("paused", "stopped"):
            raise ValueError(f"action must be paused or stopped, not {action!r}")
        self.client, self.ledger, self.app = client, ledger, app
        self.containers = [c for c in containers if c.running]
        self.action, self.operation, self.clock = action, operation, clock
        self.stop_timeout, self.wait_until_up = stop_timeout, wait_until_up
        self._records: list[tuple[int, AppContainer]] = []

    def quiesce(self) -> None:
        owner = Owner.this_process()
        for container in self.containers:
            entry_id = self.ledger.record(
                QuiescedRecord(container.id, container.name, self.app, self.action, self.operation, owner, self.clock())
            )
            self._records.append((entry_id, container))
            with docker_errors(f"{'pausing' if self.action == 'paused' else 'stopping'} {container.name}"):
                if self.action == "paused":
                    self.client.api.pause(container.id)
                else:
                    self.client.api.stop(container.id, timeout=self.stop_timeout)

    def resume(self) -> None:
        """Start every container quiesced here, in reverse order, waiting for each to be up.
        Tries them all; raises the first failure afterwards."""
        failures: list[str] = []
        for entry_id, container in reversed(self._records):
            try:
                _resume(self.client, container.id, self.action)
                if self.wait_until_up:
                    wait_until_up(self.client, container.id)
            except LifeboatError as err:
                failures.append(f"{container.name}: {err}")
                continue
            self.ledger.release(entry_id)
        self._records.clear()
        if failures:
            raise LifeboatError("could not start again: " + "; ".join(failures))


@dataclass
class Repaired:
    container_name: str
    action: str  # what Lifeboat had done: paused or stopped
    outcome: str  # "started", "unpaused", "gone", or the error


def repair(client: DockerClient, ledger: QuiesceLedger, force: bool = False) -> list[Repaired]:
    """Resume the containers a dead Lifeboat process on this host left paused or stopped
    (with `force`, also those of live processes: only when you know they are stuck)."""
    done = []
    for entry_id, record in ledger.held_on(host_name()):
        if record.owner.is_alive() and not force:
            continue
        try:
            with docker_errors(f"inspecting {record.container_name}"):
                exists = bool(client.api.containers(all=True, filters={"id": record.container_id}))
            if exists:
                _resume(client, record.container_id, record.action)
                wait_until_up(client, record.container_id)
                outcome = "unpaused" if record.action == "paused" else "started"
            else:
                outcome = "gone"
        except LifeboatError as err:
            done.append(Repaired(record.container_name, record.action, f"failed: {err}"))
            continue
        ledger.release(entry_id)
        done.append(Repaired(record.container_name, record.action, outcome))
    return done
