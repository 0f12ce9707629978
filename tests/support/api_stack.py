"""A running Lifeboat API for tests: resources directory with a local storage, a catalog,
the reconciler's loop on a thread and uvicorn on a free loopback port. Keys: one admin,
one read-only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from docker import DockerClient

from controller.api.app import create_app
from controller.api.keys import KeyRing, hash_key, new_key
from controller.api.server import ApiServer
from controller.api.service import ApiService
from controller.catalog.catalog import Catalog
from controller.reconciler.loop import run_controller
from controller.reconciler.on_demand import OnDemand
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.storage_factory import storage_for_resource
from controller.reconciler.work_queue import WorkQueue
from controller.resources.backup_storage import BackupStorage
from controller.resources.config import ApiKeyEntry
from controller.storage.base import Storage

PASSPHRASE = "api stack passphrase"
ENVIRON = {"API_STACK_PASS": PASSPHRASE}


def write_storage(resources: Path, repository: Path, name: str = "local") -> None:
    (resources / "storages").mkdir(parents=True, exist_ok=True)
    (resources / "storages" / f"{name}.yaml").write_text(
        f"apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {{name: {name}}}\n"
        f"spec:\n  local: {{path: {repository}}}\n  encryption: {{passphrase: {{env: API_STACK_PASS}}}}\n"
    )


@dataclass
class ApiStack:
    url: str
    admin_key: str
    read_key: str
    resources: Path
    catalog: Catalog
    reconciler: Reconciler
    server: ApiServer
    stop_loop: threading.Event
    wake: threading.Event
    loop: threading.Thread

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key if key is not None else self.admin_key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def close(self) -> None:
        self.server.stop()
        self.stop_loop.set()
        self.wake.set()
        self.loop.join(timeout=120)
        self.reconciler.queue.shutdown()
        self.catalog.close()


def start_stack(
    tmp_path: Path,
    docker: Callable[[], DockerClient],
    max_request_bytes: int = 64 * 1024,
    storage_factory: Callable[[BackupStorage, Mapping[str, str]], Storage] = storage_for_resource,
) -> ApiStack:
    """`storage_factory` builds each storage from its resource (wrap it to inject faults)."""
    resources = tmp_path / "resources"
    write_storage(resources, tmp_path / "repo")
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    wake, stop = threading.Event(), threading.Event()
    queue = WorkQueue(2, on_done=wake.set)
    reconciler = Reconciler(
        resources, catalog, docker, queue, environ=ENVIRON, retry_wait=0.1, storage_factory=storage_factory
    )
    admin_key, read_key = new_key(), new_key()
    keys = KeyRing(
        [
            ApiKeyEntry(name="platform", role="admin", hash=hash_key(admin_key)),
            ApiKeyEntry(name="dashboard", role="read", hash=hash_key(read_key)),
        ]
    )
    service = ApiService(reconciler, OnDemand(reconciler), wake.set)
    server = ApiServer(create_app(service, keys, max_request_bytes=max_request_bytes), "127.0.0.1:0")
    url = server.start()
    loop = threading.Thread(target=run_controller, args=(reconciler, wake, stop, 2.0), daemon=True)
    loop.start()
    return ApiStack(url, admin_key, read_key, resources, catalog, reconciler, server, stop, wake, loop)


def poll(client: httpx.Client, url: str, done: set[str], field: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = client.get(url).json()["data"]
        if data[field] in done:
            return data
        assert time.monotonic() < deadline, f"{url} still {data[field]}"
        time.sleep(0.3)
