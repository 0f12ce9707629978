"""One reconcile pass (DESIGN.md §3): load every resource, then let each kind's reconciler
compare it with the catalog, start what is due, and write its status. Level-triggered: a
second pass with nothing new changes nothing and writes nothing.

Work (backups, retention, restores, maintenance) runs on the WorkQueue as the runs in
backup_run.py and restore_run.py; each records its outcome in the catalog, and the status
written by the next pass is derived from the catalog, so a status never claims more than
the catalog knows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from controller.apps.docker_api import DockerClient
from controller.catalog.catalog import Catalog
from controller.catalog.models import Backup
from controller.reconciler.backup_run import policy_key
from controller.reconciler.notifications import Notifications
from controller.reconciler.notifiers import NotifierReconciler
from controller.reconciler.policies import PolicyReconciler
from controller.reconciler.recovery import recover
from controller.reconciler.removed_policies import RemovedPolicies
from controller.reconciler.restores import RestoreReconciler
from controller.reconciler.runtime import Runtime, StorageRepositories, utc_now
from controller.reconciler.status import StatusWriter
from controller.reconciler.storage_factory import storage_for_resource
from controller.reconciler.storages import StorageReconciler
from controller.reconciler.work_queue import WorkQueue
from controller.repository.archiver import Progress
from controller.resources.backup_storage import BackupStorage
from controller.resources.loader import LoadResult, load_paths
from controller.resources.secrets import database_password_reader
from controller.storage.base import Storage


class Reconciler:
    def __init__(
        self,
        resources: Path,
        catalog: Catalog,
        docker: Callable[[], DockerClient],
        queue: WorkQueue,
        *,
        clock: Callable[[], datetime] = utc_now,
        environ: Mapping[str, str],
        max_backup_bytes: int | None = None,
        transfers: int = 2,
        max_concurrent_drills: int = 1,
        retry_wait: float = 2.0,
        scheduling: bool = True,
        storage_factory: Callable[[BackupStorage, Mapping[str, str]], Storage] = storage_for_resource,
    ) -> None:
        """`scheduling` False (`lifeboat api`): no scheduled backups, no maintenance, no policy
        status; restores and work asked for through the API only. `storage_factory` builds a
        storage from its resource (a test wraps it to inject faults or count requests)."""
        self.resources, self.queue, self.scheduling = resources, queue, scheduling
        self.repositories = StorageRepositories(environ, clock, storage_factory)
        self.runtime = Runtime(
            catalog,
            self.repositories,
            docker=docker,
            clock=clock,
            read_secret=database_password_reader(environ),
            transfers=transfers,
            max_backup_bytes=max_backup_bytes,
            retry_wait=retry_wait,
            drills=threading.BoundedSemaphore(max_concurrent_drills),
        )
        self.status = StatusWriter(catalog, clock)
        self.storages = StorageReconciler(self.runtime, self.repositories, queue, self.status)
        self.policies = PolicyReconciler(self.runtime, queue, self.status)
        self.removed_policies = RemovedPolicies(self.runtime, queue)
        self.restores = RestoreReconciler(self.runtime, queue, self.status)
        self.notifications = Notifications(self.runtime, environ, retry_wait)
        self.notifiers = NotifierReconciler(self.notifications, self.status)
        self.next_due: datetime | None = None  # the earliest nextRunAt seen by the last pass

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.runtime.clock

    @property
    def docker(self) -> Callable[[], DockerClient]:
        return self.runtime.docker

    @property
    def progress(self) -> dict[str, Progress]:
        """Work key (an app, or policy:NAME) → the progress of its running backup."""
        return self.runtime.progress

    def progress_of(self, row: Backup) -> Progress | None:
        """The live progress of a running backup: its job runs under its app's key, or its
        policy's when it backs up host paths only."""
        return self.progress.get(row.app_id) or (self.progress.get(policy_key(row.policy)) if row.policy else None)

    def recover(self) -> list[str]:
        """After a crash; see recovery.py. Interrupted restores need their storages: loaded first."""
        self.load()
        return recover(self.runtime)

    def load(self) -> LoadResult:
        """Every resource in the resources directory, with the problems found; the runs see
        the storages as loaded here."""
        loaded = load_paths([self.resources]) if self.resources.exists() else LoadResult()
        storages = [item.resource for item in loaded.of_kind("BackupStorage")]
        self.repositories.update([storage for storage in storages if isinstance(storage, BackupStorage)])
        return loaded

    def pass_once(self) -> None:
        if not self.resources.exists():
            return
        loaded = self.load()
        self.notifications.update(loaded)  # first: what this pass's work announces is delivered
        for problem in loaded.problems:
            self.status.report_invalid(problem)
        storages = {item.name for item in loaded.of_kind("BackupStorage")}
        self.next_due = None
        if self.scheduling:
            for item in loaded.of_kind("BackupStorage"):
                self.storages.reconcile(item)
            for item in loaded.of_kind("BackupPolicy"):
                due = self.policies.reconcile(item, storages)
                if due is not None and (self.next_due is None or due < self.next_due):
                    self.next_due = due
        for item in loaded.of_kind("Restore"):
            self.restores.reconcile(item)
        for item in loaded.of_kind("Notifier"):
            self.notifiers.reconcile(item)
        if self.scheduling:
            self.removed_policies.reconcile(loaded.of_kind("BackupPolicy"), storages, loaded.problems)
