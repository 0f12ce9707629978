"""What the backup and restore runs need from the process that hosts them (the controller,
the API server or one CLI command), built once by that entry point and passed in: the
catalog, repositories by storage name, the Docker engine, the clock, secrets, limits, and
the live progress of running work. Nothing here is built at import."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from controller.apps.docker_api import DockerClient
from controller.catalog.catalog import Catalog
from controller.errors import DockerUnavailable, InvalidConfig, LifeboatError, ResourceNotFound, TransientError
from controller.host import host_name
from controller.reconciler.quiesce_ledger import CatalogLedger
from controller.reconciler.storage_factory import passphrase_for_resource, storage_for_resource
from controller.repository.archiver import Progress
from controller.repository.crypto import MasterKey
from controller.repository.repository import Repository
from controller.resources.backup_storage import BackupStorage
from controller.resources.meta import SecretRef, spec_generation
from controller.storage.base import Storage

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def wall_clock() -> datetime:
    """Leases compare this host's clock with the storage's: always the real time, even when
    the runs go on a test clock."""
    return datetime.now(UTC)


def no_docker() -> DockerClient:
    raise DockerUnavailable("no Docker engine was given to this command: it backs up host paths only")


def no_secrets(ref: SecretRef) -> str:
    raise InvalidConfig("a database password reference needs a secret reader, and this run has none")


class Repositories(Protocol):
    """Repositories by BackupStorage name, and what each holds in bytes. The size is measured
    after writes (backups, prunes, forgets) and kept: status and quota read it without
    listing the storage again."""

    def open(self, storage: str) -> Repository: ...

    def quota_bytes(self, storage: str) -> int | None: ...

    def size(self, storage: str, repository: Repository) -> int:
        """The last measured size; measured now when there is none."""
        ...

    def measure(self, storage: str, repository: Repository) -> None: ...

    def sizes(self) -> dict[str, int]: ...


class _Sizes:
    """Bytes per storage, one listing each time it is measured."""

    def __init__(self) -> None:
        self._bytes: dict[str, int] = {}

    def size(self, storage: str, repository: Repository) -> int:
        if storage not in self._bytes:
            self.measure(storage, repository)
        return self._bytes.get(storage, 0)

    def measure(self, storage: str, repository: Repository) -> None:
        try:
            self._bytes[storage] = sum(info.size for info in repository.storage.list(""))
        except LifeboatError as err:
            log.warning("could not measure the repository of storage %s: %s", storage, err)

    def sizes(self) -> dict[str, int]:
        return dict(self._bytes)


class OpenedRepository(_Sizes):
    """One repository that is already open, whatever storage name is asked for: a CLI command
    that opened it with its own passphrase rules."""

    def __init__(self, repository: Repository, quota: int | None = None) -> None:
        super().__init__()
        self.repository, self.quota = repository, quota

    def open(self, storage: str) -> Repository:
        return self.repository

    def quota_bytes(self, storage: str) -> int | None:
        return self.quota


class StorageRepositories(_Sizes):
    """The controller's repositories, from the BackupStorage resources of the latest pass.
    A repository is initialised on first use. The passphrase's key derivation is slow on
    purpose, so the master key is kept per storage spec: later opens skip it."""

    def __init__(
        self,
        environ: Mapping[str, str],
        clock: Callable[[], datetime] = utc_now,
        storage_factory: Callable[[BackupStorage, Mapping[str, str]], Storage] = storage_for_resource,
    ) -> None:
        super().__init__()
        self.environ, self.clock, self.storage_factory = environ, clock, storage_factory
        self._resources: dict[str, BackupStorage] = {}
        self._master_keys: dict[tuple[str, str], tuple[MasterKey, str]] = {}
        self._opening = threading.Lock()  # two jobs on a new storage: one initialises, the other opens

    def update(self, storages: list[BackupStorage]) -> None:
        """The storages as the resources directory declares them now."""
        self._resources = {storage.metadata.name: storage for storage in storages}

    def resource(self, storage: str) -> BackupStorage:
        found = self._resources.get(storage)
        if found is None:
            raise ResourceNotFound(f'BackupStorage "{storage}" is not defined; apply its resource first')
        return found

    def quota_bytes(self, storage: str) -> int | None:
        return self.resource(storage).spec.quota_bytes

    def open(self, storage: str) -> Repository:
        resource = self.resource(storage)
        store = self.storage_factory(resource, self.environ)
        cache_key = (storage, spec_generation(resource.spec.model_dump(mode="json", by_alias=True)))
        cached = self._master_keys.get(cache_key)
        if cached is not None:
            return Repository.open_with_master_key(store, *cached)
        with self._opening:
            cached = self._master_keys.get(cache_key)  # another job may have opened it meanwhile
            if cached is not None:
                return Repository.open_with_master_key(store, *cached)
            passphrase = passphrase_for_resource(resource, self.environ)
            try:
                store.stat("config")
            except LifeboatError:
                repository = Repository.init(store, passphrase, self.clock(), host_name(), "lifeboat-controller")
            else:
                repository = Repository.open(store, passphrase)
            self._master_keys[cache_key] = (repository.master, repository.key_id)
            return repository


V = TypeVar("V")


class Board(dict[str, V]):
    """Running work's progress by key (the API and the status read it); `watch`, when given,
    sees every update (a terminal's progress bar)."""

    def __init__(self, watch: Callable[[str, V], None] | None = None) -> None:
        super().__init__()
        self.watch = watch

    def __setitem__(self, key: str, value: V) -> None:
        super().__setitem__(key, value)
        if self.watch is not None:
            self.watch(key, value)


@dataclass(frozen=True)
class RestoreStep:
    """Where a running restore is: its phase, and what it has written in it."""

    phase: str  # planning, safety backup, stopping the app, writing PATH, checking, loading DUMP, starting the app
    files: int = 0
    bytes: int = 0


@dataclass
class Runtime:
    """Shared by every run a process hosts."""

    catalog: Catalog
    repositories: Repositories
    docker: Callable[[], DockerClient] = no_docker
    clock: Callable[[], datetime] = utc_now
    read_secret: Callable[[SecretRef], str] = no_secrets
    transfers: int = 2  # limits.transfers: uploads in flight per backup
    max_backup_bytes: int | None = None  # limits.max_backup_size_gb
    retry_wait: float = 2.0  # first wait before retrying a transient failure
    progress: Board[Progress] = field(default_factory=Board)
    restores: Board[RestoreStep] = field(default_factory=Board)  # restore run id → where it is
    drills: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(1))  # limits

    @property
    def ledger(self) -> CatalogLedger:
        return CatalogLedger(self.catalog)

    def event(self, kind: str, name: str, reason: str, message: str, warning: bool = False) -> None:
        self.catalog.record_event(self.clock(), kind, name, reason, message, warning)

    def retrying(self, kind: str, name: str) -> Retrying:
        """Transient failures (Docker or storage unreachable, lock contention) are tried again,
        three times with backoff and jitter, each retry an event; the rest fail at once."""

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            message = f"attempt {state.attempt_number} failed, retrying: {error}"
            log.warning("%s %s: %s", kind, name, message)
            self.event(kind, name, "Retrying", message, True)

        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=self.retry_wait, max=60) + wait_random(0, self.retry_wait),
            before_sleep=before_sleep,
            reraise=True,
        )
