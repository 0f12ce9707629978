"""One reconcile pass (DESIGN.md §3): load every resource, compare with the catalog, start
what is due, and write each resource's status. Level-triggered: a second pass with nothing
new changes nothing and writes nothing.

Work (backups, retention, restores) runs on the WorkQueue; each job records its outcome in
the catalog, and the status written by the next pass is derived from the catalog, so a
status never claims more than the catalog knows."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from docker import DockerClient
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from controller.apps.backup import AppBackup, BackupRequest, Quota, new_backup_id
from controller.apps.quiesce import Owner, repair
from controller.apps.restore import AppRestore, RestoreRequest, backup_at
from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import Backup, BackupStatus, KnownPolicy, RestoreRun
from controller.errors import LifeboatError, ResourceProblem, TransientError, WriteConflict
from controller.host import host_name
from controller.reconciler.retention import Dated, plan_retention
from controller.reconciler.schedule_plan import next_run_after, plan_schedule
from controller.reconciler.storage_factory import passphrase_for_resource, storage_for_resource
from controller.reconciler.work_queue import WorkQueue
from controller.repository.archiver import Progress
from controller.repository.checker import Checker
from controller.repository.crypto import MasterKey
from controller.repository.pruner import Pruner
from controller.repository.repository import Repository
from controller.resources.backup_policy import (
    BackupCounts,
    BackupPolicy,
    BackupPolicyStatus,
    DeletionPolicy,
    LastBackup,
)
from controller.resources.backup_storage import BackupStorage, BackupStorageStatus, CheckResult
from controller.resources.loader import LoadedResource, LoadResult, load_paths
from controller.resources.meta import (
    Condition,
    ConditionStatus,
    SecretRef,
    find_condition,
    set_condition,
    spec_generation,
)
from controller.resources.restore import Restore, RestorePhase, RestoreStatus
from controller.resources.secrets import read_secret
from controller.resources.writeback import find_document, write_status

log = logging.getLogger(__name__)
LOCK_WAIT = timedelta(minutes=10)
STALLED_AFTER = 3  # failed runs in a row that make a policy Stalled
_STATUS_TYPES: dict[str, type[BackupStorageStatus | BackupPolicyStatus | RestoreStatus]] = {
    "BackupStorage": BackupStorageStatus,
    "BackupPolicy": BackupPolicyStatus,
    "Restore": RestoreStatus,
}
_TERMINAL = {RestorePhase.SUCCEEDED.value, RestorePhase.FAILED.value, RestorePhase.ROLLED_BACK.value}


def work_key(policy: BackupPolicy) -> str:
    """The work queue's key for a policy's jobs: its app (one job per app at a time)."""
    return policy.spec.app or _policy_key(policy.metadata.name)


def _policy_key(name: str) -> str:
    """The key of a policy without an app (host paths only)."""
    return f"policy:{name}"


def wall_clock() -> datetime:
    """Leases compare this host's clock with the storage's: always the real time, even when
    the reconciler runs on a test clock."""
    return datetime.now(UTC)


class Reconciler:
    def __init__(
        self,
        resources: Path,
        catalog: Catalog,
        docker: Callable[[], DockerClient],
        queue: WorkQueue,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        environ: Mapping[str, str],
        max_backup_bytes: int | None = None,
        transfers: int = 2,
        retry_wait: float = 2.0,
        scheduling: bool = True,
    ) -> None:
        """`scheduling` False (`lifeboat api`): no scheduled backups, no maintenance, no policy
        status; restores and work asked for through the API only."""
        self.resources, self.catalog, self.docker, self.queue = resources, catalog, docker, queue
        self.clock, self.environ = clock, environ
        self.max_backup_bytes = max_backup_bytes  # limits.max_backup_size_gb
        self.transfers = transfers  # limits.transfers: uploads in flight per backup
        self.retry_wait = retry_wait  # first wait before retrying a transient failure
        self.scheduling = scheduling
        self.next_due: datetime | None = None  # the earliest nextRunAt seen by the last pass
        self._master_keys: dict[tuple[str, str], tuple[MasterKey, str]] = {}  # (storage, spec) → (key, key id)
        self.progress: dict[str, Progress] = {}  # work key (an app) → progress of its running backup
        self.repository_bytes: dict[str, int] = {}  # storage → bytes stored, measured after each change

    # Start-up

    def recover(self) -> list[str]:
        """After a crash: in-flight backups become failed, running restores Failed, and
        containers a killed process stopped are started again."""
        notes = []
        host = host_name()
        unfinished = [
            row
            for status in (BackupStatus.PENDING, BackupStatus.IN_PROGRESS)
            for row in self.catalog.list_backups(BackupFilter(status=status, limit=10_000))
        ]
        for row in unfinished:
            owner = Owner.from_token(row.host, row.owner)
            if row.host != host or (owner is not None and owner.is_alive()):
                continue  # another host's, or a live process's (a `lifeboat backup` beside us)
            row.status, row.error_code = BackupStatus.FAILED, "BACKUP_CREATE_FAILED"
            row.error_message, row.completed_at = "interrupted: the process taking it stopped", self.clock()
            self.catalog.save_backup(row)
            notes.append(f"backup {row.backup_id} marked failed (interrupted)")
        for run in self.catalog.restore_runs_in_phase(RestorePhase.RUNNING.value):
            safety = f"; safety backup {run.safety_backup_id} holds the state before it" if run.safety_backup_id else ""
            run.phase, run.completed_at = RestorePhase.FAILED.value, self.clock()
            run.message = f"interrupted by a controller restart; the app's containers were started again{safety}"
            self.catalog.save_restore_run(run)
            notes.append(f"restore {run.id} marked Failed (interrupted)")
        try:
            notes += [f"started {r.container_name} again ({r.outcome})" for r in repair(self.docker(), self.catalog)]
        except LifeboatError as err:
            notes.append(f"could not repair containers: {err}")
        return notes

    # The pass

    def load(self) -> LoadResult:
        """Every resource in the resources directory, with the problems found."""
        return load_paths([self.resources]) if self.resources.exists() else LoadResult()

    def pass_once(self) -> None:
        if not self.resources.exists():
            return
        loaded = self.load()
        for problem in loaded.problems:
            self._report_invalid(problem)
        storages = {r.name: r for r in loaded.of_kind("BackupStorage")}
        self.next_due = None
        if self.scheduling:
            for item in loaded.of_kind("BackupStorage"):
                self._storage(item)
            for item in loaded.of_kind("BackupPolicy"):
                self._policy(item, storages)
        for item in loaded.of_kind("Restore"):
            self._restore(item, storages)
        if self.scheduling:
            self._removed_policies(loaded.of_kind("BackupPolicy"), storages, loaded.problems)

    def _removed_policies(
        self, present: list[LoadedResource], storages: dict[str, LoadedResource], problems: list[ResourceProblem]
    ) -> None:
        """A policy whose file is gone stops being scheduled (it is simply not seen); with
        deletionPolicy: Delete its backups are forgotten too. The catalog remembers every
        policy seen, so a file removed while the controller was down counts as well. While
        some file cannot be parsed at all, nothing counts as removed: a typo must not read
        as a deletion."""
        unreadable = [p for p in problems if p.name is None and p.kind in (None, "BackupPolicy")]
        if unreadable:
            log.warning("not acting on removed policies while %s cannot be read", unreadable[0].file)
            return
        known = {record.name: record for record in self.catalog.known_policies()}
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
                self.catalog.remember_policy(record)
        seen = {item.name for item in present}
        invalid = {p.name for p in problems if p.kind == "BackupPolicy"}  # broken, not removed
        for name, record in known.items():
            if name in seen or name in invalid:
                continue
            storage = storages.get(record.storage)
            if record.deletion_policy == DeletionPolicy.DELETE.value and storage is not None:
                # Forgotten by the job; kept (and tried again) while the app is busy or it fails.
                self.queue.submit(
                    record.app or _policy_key(name), functools.partial(self._forget_policy, name, storage)
                )
            else:
                self.catalog.record_event(self.clock(), "BackupPolicy", name, "Removed", "its backups are kept")
                self.catalog.forget_known_policy(name)

    def _forget_policy(self, name: str, storage_item: LoadedResource) -> None:
        storage = storage_item.resource
        assert isinstance(storage, BackupStorage)
        rows = self.catalog.list_backups(BackupFilter(policy=name, limit=100_000))
        try:
            repository = self.open_repository(storage)
            with repository.locked(True, "forget", wall_clock, LOCK_WAIT):
                for row in rows:
                    if row.snapshot_id:
                        repository.forget(row.snapshot_id)
                    self.catalog.delete_backup(row.backup_id)
        except LifeboatError as err:
            self.catalog.record_event(self.clock(), "BackupPolicy", name, "DeleteFailed", str(err), True)
            return
        self.catalog.forget_known_policy(name)
        message = (
            f"removed with deletionPolicy Delete: {len(rows)} backup(s) forgotten (space returns at the next prune)"
        )
        self.catalog.record_event(self.clock(), "BackupPolicy", name, "Deleted", message)

    # Storages

    def open_repository(self, storage: BackupStorage) -> Repository:
        """Open (or on first use initialise) the storage's repository. The passphrase's key
        derivation is deliberately slow, so the master key is kept per storage spec: passes
        and jobs after the first open without it."""
        store = storage_for_resource(storage, self.environ)
        cache_key = (storage.metadata.name, spec_generation(storage.spec.model_dump(mode="json", by_alias=True)))
        cached = self._master_keys.get(cache_key)
        if cached is not None:
            return Repository.open_with_master_key(store, *cached)
        passphrase = passphrase_for_resource(storage, self.environ)
        try:
            store.stat("config")
        except LifeboatError:
            repository = Repository.init(store, passphrase, self.clock(), host_name(), "lifeboat-controller")
        else:
            repository = Repository.open(store, passphrase)
        self._master_keys[cache_key] = (repository.master, repository.key_id)
        return repository

    def _storage(self, item: LoadedResource) -> None:
        storage = item.resource
        assert isinstance(storage, BackupStorage)
        old = storage.status or BackupStorageStatus()
        status = old.model_copy(deep=True)
        status.observed_generation = item.generation
        try:
            repository = self.open_repository(storage)
            status.reachable, status.snapshots = True, len(repository.snapshots())
            if storage.metadata.name not in self.repository_bytes:
                self.measure(storage.metadata.name, repository)
            condition = self._condition("Ready", True, "Reachable", "the repository opens", item)
        except LifeboatError as err:
            status.reachable = False
            condition = self._condition("Ready", False, err.__class__.__name__, str(err), item)
        status.conditions = set_condition(old.conditions, condition)
        self._maintenance(item, storage, status)
        self._write(item, status)

    def _maintenance(self, item: LoadedResource, storage: BackupStorage, status: BackupStorageStatus) -> None:
        """Prune and check on the storage's schedules. Outcomes are catalog events, from which
        status.lastPrune and status.lastCheck are read (so a crashed job never fakes one)."""
        name, now = storage.metadata.name, self.clock()
        events = self.catalog.events_for("BackupStorage", name, limit=50)
        pruned = [e for e in events if e.reason == "Pruned"]
        checked = [e for e in events if e.reason in ("Checked", "CheckFailed")]
        status.last_prune = pruned[-1].time if pruned else status.last_prune
        if checked:
            last = checked[-1]
            status.last_check = CheckResult(time=last.time, ok=last.reason == "Checked", message=last.message)
        ready = find_condition(status.conditions, "Ready")
        since = ready.last_transition_time if ready is not None else now
        maintenance = storage.spec.maintenance
        for what, schedule, last_time in (
            ("prune", maintenance.prune, status.last_prune),
            ("check", maintenance.check, status.last_check.time if status.last_check else None),
        ):
            if schedule is not None and next_run_after(schedule, last_time or since) <= now:
                self.queue.submit(f"storage:{name}", functools.partial(self._maintenance_job, storage, what))

    def _maintenance_job(self, storage: BackupStorage, what: str) -> None:
        name = storage.metadata.name
        try:
            repository = self.open_repository(storage)
            if what == "prune":
                with repository.locked(True, "prune", wall_clock, LOCK_WAIT):
                    report = Pruner(repository, wall_clock()).prune()
                message = (
                    f"freed {report.bytes_freed} bytes "
                    f"({report.packs_deleted} packs deleted, {report.packs_repacked} repacked)"
                )
                self.catalog.record_event(self.clock(), "BackupStorage", name, "Pruned", message)
                self.measure(name, repository)
                return
            percent = storage.spec.maintenance.check_read_data_percent
            with repository.locked(False, "check", wall_clock, LOCK_WAIT):
                checked = Checker(repository).check(read_data_percent=percent)
            if checked.ok:
                message = (
                    f"{checked.snapshots} snapshots, {checked.packs} packs, {checked.packs_read} packs read: no damage"
                )
                self.catalog.record_event(self.clock(), "BackupStorage", name, "Checked", message)
            else:
                damage = "; ".join(d.describe() for d in checked.damage[:5])
                self.catalog.record_event(self.clock(), "BackupStorage", name, "CheckFailed", damage, True)
        except LifeboatError as err:
            log.warning("%s of storage %s failed: %s", what, name, err)
            reason = "CheckFailed" if what == "check" else "PruneFailed"
            self.catalog.record_event(self.clock(), "BackupStorage", name, reason, str(err), True)

    # Policies

    def _policy(self, item: LoadedResource, storages: dict[str, LoadedResource]) -> None:
        policy = item.resource
        assert isinstance(policy, BackupPolicy)
        old = policy.status or BackupPolicyStatus()
        status = old.model_copy(deep=True)
        name, now = policy.metadata.name, self.clock()
        storage = storages.get(policy.spec.storage)
        if storage is None:
            ready = self._condition(
                "Ready", False, "StorageNotFound", f'no BackupStorage "{policy.spec.storage}"', item
            )
        else:
            ready = self._condition("Ready", True, "Scheduled" if policy.spec.schedule else "Manual", "", item)
        rows = self.catalog.list_backups(BackupFilter(policy=name, limit=10_000))
        plan = plan_schedule(
            policy.spec.schedule,
            policy.spec.suspend,
            old.next_run_at,
            old.observed_generation != item.generation,
            rows[0].created_at if rows else None,
            now,
        )
        status.next_run_at = plan.next_run_at
        key = work_key(policy)
        if plan.run_now and storage is not None and not self.queue.submit(key, lambda: self._backup_job(item, storage)):
            # The app is busy (a restore, or another policy's backup): run when it is free.
            status.next_run_at = old.next_run_at
        if self.queue.busy(key):
            status.conditions = set_condition(
                status.conditions, self._condition("Reconciling", True, "BackupRunning", "", item)
            )
        else:
            status.conditions = [c for c in status.conditions if c.type != "Reconciling"]
        self._policy_status_from_catalog(status, rows, item)
        status.conditions = set_condition(status.conditions, ready)
        status.observed_generation = item.generation
        if status.next_run_at is not None and (self.next_due is None or status.next_run_at < self.next_due):
            self.next_due = status.next_run_at
        self._write(item, status)

    def _policy_status_from_catalog(self, status: BackupPolicyStatus, rows: list[Backup], item: LoadedResource) -> None:
        finished = [r for r in rows if r.status in (BackupStatus.COMPLETED, BackupStatus.FAILED)]
        completed = [r for r in finished if r.status == BackupStatus.COMPLETED]
        status.counts = BackupCounts(
            total=len(finished),
            succeeded=len(completed),
            failed=len(finished) - len(completed),
            retained=len(completed),
        )
        if not finished:
            return
        latest = finished[0]
        duration = (latest.completed_at - latest.created_at).total_seconds() if latest.completed_at else 0.0
        status.last_backup = LastBackup(
            id=latest.backup_id,
            time=latest.created_at,
            type=latest.backup_type,
            size_bytes=latest.size_bytes,
            bytes_added=latest.bytes_added,
            duration_seconds=round(duration, 3),
        )
        status.last_successful_backup_time = completed[0].created_at if completed else None
        succeeded = latest.status == BackupStatus.COMPLETED
        status.last_error = None if succeeded else latest.error_message
        reason = "Completed" if succeeded else (latest.error_code or "Failed")
        message = f"backup {latest.backup_id}" + ("" if succeeded else f": {latest.error_message}")
        status.conditions = set_condition(
            status.conditions, self._condition("LastBackupSucceeded", succeeded, reason, message, item)
        )
        recent = finished[:STALLED_AFTER]
        if len(recent) == STALLED_AFTER and all(r.status == BackupStatus.FAILED for r in recent):
            stalled = f"the last {STALLED_AFTER} backups failed; retention deletes nothing until one succeeds"
            status.conditions = set_condition(
                status.conditions, self._condition("Stalled", True, reason, stalled, item)
            )
        else:
            status.conditions = [c for c in status.conditions if c.type != "Stalled"]

    def _backup_job(self, item: LoadedResource, storage_item: LoadedResource) -> None:
        policy, storage = item.resource, storage_item.resource
        assert isinstance(policy, BackupPolicy) and isinstance(storage, BackupStorage)
        name, key = policy.metadata.name, work_key(policy)
        started = self.clock()
        try:
            for attempt in self.retrying("BackupPolicy", name):
                with attempt:
                    repository = self.open_repository(storage)
                    client = self.docker() if policy.spec.app else None
                    log.info("backup for policy %s starting", name)
                    with repository.locked(False, "backup", wall_clock, LOCK_WAIT):
                        row = self.app_backup(client, repository, storage, key).run(BackupRequest.from_policy(policy))
            log.info(
                "backup %s of policy %s completed: %d files, %d bytes (%d added)",
                row.backup_id,
                name,
                row.files,
                row.size_bytes,
                row.bytes_added,
            )
            self.catalog.record_event(self.clock(), "BackupPolicy", name, "BackupCompleted", f"backup {row.backup_id}")
            self._apply_retention(policy, repository)
            self.measure(storage.metadata.name, repository)
        except LifeboatError as err:
            log.warning("backup for policy %s failed: %s", name, err)
            self.catalog.record_event(self.clock(), "BackupPolicy", name, err.code, str(err), True)
            self._record_failure(policy, storage, started, err)
        finally:
            self.progress.pop(key, None)

    def measure(self, storage_name: str, repository: Repository) -> None:
        """The repository's size for the metrics (one listing, after a change)."""
        try:
            self.repository_bytes[storage_name] = sum(info.size for info in repository.storage.list(""))
        except LifeboatError as err:
            log.warning("could not measure the repository of storage %s: %s", storage_name, err)

    def progress_of(self, row: Backup) -> Progress | None:
        """The live progress of a running backup: its job runs under its app's key, or its
        policy's when it backs up host paths only."""
        return self.progress.get(row.app_id) or (self.progress.get(_policy_key(row.policy)) if row.policy else None)

    def app_backup(
        self, client: DockerClient | None, repository: Repository, storage: BackupStorage, key: str
    ) -> AppBackup:
        """A backup with this controller's clock, secrets and quotas, whose progress is kept
        under the work key `key` for the API."""
        return AppBackup(
            client,
            self.catalog,
            repository,
            clock=self.clock,
            read_secret=self.read_secret,
            quota=Quota(storage.spec.quota_bytes, self.max_backup_bytes),
            progress=functools.partial(self.progress.__setitem__, key),
            uploads=self.transfers,
        )

    def _record_failure(
        self, policy: BackupPolicy, storage: BackupStorage, started: datetime, err: LifeboatError
    ) -> None:
        """A run that failed before its backup row existed (Docker or the storage unreachable)
        still gets a failed row: the policy's status must show that the run failed."""
        name = policy.metadata.name
        if self.catalog.list_backups(BackupFilter(policy=name, created_after=started, limit=1)):
            return
        subject = policy.spec.app or name
        self.catalog.add_backup(
            Backup(
                backup_id=new_backup_id(subject, started),
                app_id=subject,
                app_name=subject,
                backup_type=policy.spec.backup_type.value,
                status=BackupStatus.FAILED,
                created_at=started,
                completed_at=self.clock(),
                policy=name,
                storage=storage.metadata.name,
                host=host_name(),
                error_code=err.code,
                error_message=str(err),
            )
        )

    def retrying(self, kind: str, name: str) -> Retrying:
        """Transient failures (Docker or storage unreachable, lock contention) are tried again,
        three times with backoff and jitter, each retry an event; the rest fail at once."""

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            message = f"attempt {state.attempt_number} failed, retrying: {error}"
            log.warning("%s %s: %s", kind, name, message)
            self.catalog.record_event(self.clock(), kind, name, "Retrying", message, True)

        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=self.retry_wait, max=60) + wait_random(0, self.retry_wait),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _apply_retention(self, policy: BackupPolicy, repository: Repository) -> None:
        """Runs only after a successful backup: a failing policy never loses old backups."""
        name = policy.metadata.name
        rows = self.catalog.list_backups(BackupFilter(policy=name, status=BackupStatus.COMPLETED, limit=10_000))
        zone = policy.spec.schedule.zone() if policy.spec.schedule else ZoneInfo("UTC")
        dated = [Dated(r.backup_id, r.created_at) for r in rows]
        plan = plan_retention(dated, policy.spec.retention, self.clock(), zone)
        if not plan.forget:
            return
        by_id = {r.backup_id: r for r in rows}
        with repository.locked(True, "forget", wall_clock, LOCK_WAIT):
            for backup_id in plan.forget:
                snapshot_id = by_id[backup_id].snapshot_id
                if snapshot_id:
                    repository.forget(snapshot_id)
                self.catalog.delete_backup(backup_id)
        message = f"retention removed {len(plan.forget)} backup(s): {', '.join(plan.forget)}"
        log.info("policy %s: %s", name, message)
        self.catalog.record_event(self.clock(), "BackupPolicy", name, "RetentionApplied", message)

    # Restores

    def _restore(self, item: LoadedResource, storages: dict[str, LoadedResource]) -> None:
        restore = item.resource
        assert isinstance(restore, Restore)
        name = restore.metadata.name
        old = restore.status or RestoreStatus()
        runs = self.catalog.restore_runs(name)
        if runs:
            status = self._restore_status(old, runs[-1], item)
        elif old.phase.value in _TERMINAL:
            return  # finished before this catalog knew it: never run twice
        else:
            status = old.model_copy(deep=True)
            target = restore.spec.target_app or self._source_app(restore)
            self.queue.submit(target or f"restore:{name}", lambda: self._restore_job(item, storages))
            status.phase = RestorePhase.PENDING
        status.observed_generation = item.generation
        self._write(item, status)

    def _source_app(self, restore: Restore) -> str | None:
        try:
            return self._resolve(restore).app_id
        except LifeboatError:
            return None

    def _resolve(self, restore: Restore) -> Backup:
        if restore.spec.backup:
            return self.catalog.get_backup(restore.spec.backup)
        return backup_at(self.catalog, restore.spec.policy or "", restore.spec.point_in_time or self.clock())

    def _restore_status(self, old: RestoreStatus, run: RestoreRun, item: LoadedResource) -> RestoreStatus:
        status = old.model_copy(deep=True)
        status.phase = RestorePhase(run.phase)
        status.backup_id, status.safety_backup_id = run.backup_id, run.safety_backup_id
        status.started_at, status.completed_at, status.message = run.started_at, run.completed_at, run.message
        if run.phase in _TERMINAL:
            succeeded = run.phase == RestorePhase.SUCCEEDED.value
            condition = self._condition("Succeeded", succeeded, run.phase, run.message, item)
            status.conditions = set_condition(status.conditions, condition)
        return status

    def _restore_job(self, item: LoadedResource, storages: dict[str, LoadedResource]) -> None:
        restore = item.resource
        assert isinstance(restore, Restore)
        name = restore.metadata.name
        if self.catalog.restore_runs(name):
            return  # another pass queued it first
        try:
            backup = self._resolve(restore)
            storage_item = storages.get(backup.storage)
            if storage_item is None:
                raise LifeboatError(f'backup {backup.backup_id} is in BackupStorage "{backup.storage}", which is gone')
            storage = storage_item.resource
            assert isinstance(storage, BackupStorage)
            repository = self.open_repository(storage)
            with repository.locked(False, "restore", wall_clock, LOCK_WAIT):
                AppRestore(
                    self.docker(),
                    self.catalog,
                    repository,
                    storage_name=backup.storage,
                    clock=self.clock,
                    read_secret=self.read_secret,
                ).run(
                    RestoreRequest(
                        backup.backup_id,
                        target_app=restore.spec.target_app,
                        safety_backup=restore.spec.safety_backup,
                        volumes=restore.spec.volumes,
                        databases=restore.spec.databases,
                        restore_name=name,
                        stop_app=restore.spec.stop_app,
                        verify=restore.spec.verify,
                    )
                )
        except LifeboatError as err:
            if not self.catalog.restore_runs(name):  # nothing was changed: record why
                now = self.clock()
                self.catalog.save_restore_run(
                    RestoreRun(
                        id=f"restore-{name}-{now.strftime('%Y%m%d-%H%M%S')}",
                        restore_name=name,
                        backup_id=restore.spec.backup or "",
                        target_app=restore.spec.target_app or "",
                        phase=RestorePhase.FAILED.value,
                        started_at=now,
                        completed_at=now,
                        message=f"nothing was changed: {err}",
                    )
                )

    # Status

    def _condition(self, kind: str, ok: bool, reason: str, message: str, item: LoadedResource) -> Condition:
        return Condition(
            type=kind,
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            last_transition_time=self.clock(),
            observed_generation=item.generation,
        )

    def _write(self, item: LoadedResource, status: Any) -> None:
        self._record_changes(item.kind, item.name, item.resource.status, status)
        mode = getattr(item.resource.spec, "status_mode", None)
        try:
            write_status(item.path, item.kind, item.name, item.generation, status, *([mode] if mode else []))
        except WriteConflict as err:
            log.info("%s; the next pass retries", err)

    def _record_changes(self, kind: str, name: str, old: Any, new: Any) -> None:
        """An event for every condition that changed status or reason, and for a restore's
        new phase: `lifeboat describe` shows how a resource got where it is."""
        before = {c.type: c for c in (old.conditions if old is not None else [])}
        for condition in new.conditions:
            previous = before.get(condition.type)
            if previous is not None and (previous.status, previous.reason) == (condition.status, condition.reason):
                continue
            bad = (condition.type == "Stalled") == (condition.status == ConditionStatus.TRUE)
            message = f"{condition.type}={condition.status.value}" + (
                f": {condition.message}" if condition.message else ""
            )
            self.catalog.record_event(self.clock(), kind, name, condition.reason, message, bad)
        phase = getattr(new, "phase", None)
        if phase is not None and phase != getattr(old, "phase", None):
            self.catalog.record_event(self.clock(), kind, name, f"Phase{phase.value}", new.message or "")

    def _report_invalid(self, problem: ResourceProblem) -> None:
        """Ready=False with the exact problem, written into the invalid resource itself."""
        if not problem.kind or not problem.name or problem.kind not in ("BackupStorage", "BackupPolicy", "Restore"):
            log.warning("invalid resource: %s", problem)
            return
        path = Path(problem.file)
        try:
            text = path.read_text(encoding="utf-8")
            document = find_document(text, problem.kind, problem.name)
            if document is None:
                return
            data = yaml.safe_load(document.text_of(text)) or {}
            generation = spec_generation(data.get("spec"))
            status_type = _STATUS_TYPES[problem.kind]
            try:
                status = status_type.model_validate(data.get("status") or {})
            except ValueError:
                status = status_type()
            ready = Condition(
                type="Ready",
                status=ConditionStatus.FALSE,
                reason="Invalid",
                message=f"{problem.field}: {problem.message}" if problem.field else problem.message,
                last_transition_time=self.clock(),
                observed_generation=generation,
            )
            old = status.model_copy(deep=True)
            status.observed_generation = generation
            status.conditions = set_condition(status.conditions, ready)
            self._record_changes(problem.kind, problem.name, old, status)
            write_status(path, problem.kind, problem.name, generation, status)
        except (OSError, yaml.YAMLError, LifeboatError, ValueError) as err:
            log.warning("invalid resource %s, and its status could not be written: %s", problem, err)

    def read_secret(self, ref: SecretRef) -> str:
        return read_secret(ref, self.environ, "database password").decode()
