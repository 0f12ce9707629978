"""Policies whose file is gone: they stop being scheduled (they are simply not seen); with
deletionPolicy: Delete their backups are forgotten too. The catalog remembers every policy
seen, so a file removed while the controller was down counts as well."""

from __future__ import annotations

import functools
import logging

from controller.catalog.catalog import BackupFilter
from controller.catalog.models import KnownPolicy
from controller.errors import LifeboatError, ResourceProblem
from controller.reconciler.backup_run import policy_key
from controller.reconciler.forgetting import FORGET_LOCK_WAIT, forget_backups
from controller.reconciler.runtime import Runtime
from controller.reconciler.work_queue import WorkQueue
from controller.resources.backup_policy import BackupPolicy, DeletionPolicy
from controller.resources.loader import LoadedResource

log = logging.getLogger(__name__)


class RemovedPolicies:
    def __init__(self, runtime: Runtime, queue: WorkQueue) -> None:
        self.runtime, self.queue = runtime, queue

    def reconcile(self, present: list[LoadedResource], storages: set[str], problems: list[ResourceProblem]) -> None:
        """Remember the policies present; act on those gone. While some file cannot be
        parsed at all, nothing counts as removed: a typo must not read as a deletion."""
        unreadable = [p for p in problems if p.name is None and p.kind in (None, "BackupPolicy")]
        if unreadable:
            log.warning("not acting on removed policies while %s cannot be read", unreadable[0].file)
            return
        catalog = self.runtime.catalog
        known = {record.name: record for record in catalog.known_policies()}
        for item in present:
            policy = item.resource
            assert isinstance(policy, BackupPolicy)
            record = KnownPolicy(
                name=item.name,
                app=policy.spec.app,
                storage=policy.spec.storage,
                deletion_policy=policy.spec.deletion_policy.value,
            )
            stored = known.get(item.name)
            if stored is None or (stored.app, stored.storage, stored.deletion_policy) != (
                record.app,
                record.storage,
                record.deletion_policy,
            ):
                catalog.remember_policy(record)
        seen = {item.name for item in present}
        invalid = {p.name for p in problems if p.kind == "BackupPolicy"}  # broken, not removed
        for name, record in known.items():
            if name in seen or name in invalid:
                continue
            if record.deletion_policy == DeletionPolicy.DELETE.value and record.storage in storages:
                # Forgotten by the job; kept (and tried again) while the app is busy or it fails.
                job = functools.partial(self.forget_policy, name, record.storage)
                self.queue.submit(record.app or policy_key(name), job)
            else:
                self.runtime.event("BackupPolicy", name, "Removed", "its backups are kept")
                catalog.forget_known_policy(name)

    def forget_policy(self, name: str, storage: str) -> None:
        rows = self.runtime.catalog.list_backups(BackupFilter(policy=name, limit=100_000))
        try:
            repository = self.runtime.repositories.open(storage)
            forget_backups(self.runtime, repository, rows, FORGET_LOCK_WAIT)
        except LifeboatError as err:
            self.runtime.event("BackupPolicy", name, "DeleteFailed", str(err), True)
            return
        self.runtime.catalog.forget_known_policy(name)
        message = (
            f"removed with deletionPolicy Delete: {len(rows)} backup(s) forgotten (space returns at the next prune)"
        )
        self.runtime.event("BackupPolicy", name, "Deleted", message)
