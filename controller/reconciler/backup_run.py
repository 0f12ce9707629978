"""A backup run, whoever asked for it (a schedule, the API, the CLI, a restore's safety
backup): exactly one catalog row from request to end, transient failures retried inside
it, quota, the parent snapshot, retention after success, events, progress, and the size
of the repository measured after the write.

Order (DESIGN.md §4): discover → pre-hooks → database dumps streamed into the repository →
quiesce per consistency → volumes, bind mounts and paths read from their mount points →
resume → snapshot → post-hooks → the row, with one item per volume, mount, path, dump and
hook. The row says `completed` only when every one of them succeeded."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.apps.discovery import App, discover
from controller.apps.hooks import HookResult, run_hooks
from controller.apps.quiesce import Quiescer
from controller.catalog.models import Backup, BackupItem, BackupOutcome, BackupStatus, ItemKind, SnapshotSummary
from controller.errors import BackupCreateFailed, LifeboatError, NothingToBackUp, QuotaExceeded
from controller.host import Owner, host_name
from controller.reconciler.backup_warnings import source_losses
from controller.reconciler.forgetting import apply_retention
from controller.reconciler.notices import BACKUP_STARTED, Subject, announce, backup_ended
from controller.reconciler.runtime import Runtime, wall_clock
from controller.reconciler.snapshot_layout import Layout, snapshot_layout
from controller.repository.archiver import Archiver, ArchiveResult, DirectorySource
from controller.repository.repository import Repository, SnapshotEntry
from controller.resources.backup_policy import (
    BackupPolicy,
    BackupType,
    Consistency,
    DatabaseOverride,
    Hooks,
    Include,
    Retention,
)

log = logging.getLogger(__name__)
LOCK_WAIT = timedelta(minutes=10)


@dataclass
class BackupRequest:
    """One backup to take, in the same shape for every caller."""

    app: str | None
    storage: str
    policy: str | None = None
    paths: list[str] = field(default_factory=list)
    backup_type: BackupType = BackupType.INCREMENTAL
    consistency: Consistency = Consistency.ONLINE
    include: Include = field(default_factory=Include)
    databases: list[DatabaseOverride] = field(default_factory=list)
    hooks: Hooks = field(default_factory=Hooks)
    compression: str = "auto"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # added to the snapshot's (e.g. safety=true)
    retention: Retention | None = None  # applied after a success (a policy's backups only)
    timezone: str = "UTC"  # the zone retention counts days and weeks in
    pending_id: str | None = None  # the row made when the backup was asked for (the API)

    @classmethod
    def from_policy(cls, policy: BackupPolicy) -> BackupRequest:
        spec = policy.spec
        return cls(
            app=spec.app,
            storage=spec.storage,
            policy=policy.metadata.name,
            paths=list(spec.paths),
            backup_type=spec.backup_type,
            consistency=spec.consistency,
            include=spec.include,
            databases=list(spec.databases),
            hooks=spec.hooks,
            compression=spec.compression.value,
            retention=spec.retention,
            timezone=spec.schedule.timezone if spec.schedule and spec.schedule.timezone else "UTC",
        )

    @property
    def subject(self) -> str:
        """What the backup is of: the app, else the policy of host paths."""
        return self.app or self.policy or "paths"

    @property
    def work_key(self) -> str:
        """The work queue's key: one job per app at a time (a policy's key without an app)."""
        return self.app or policy_key(self.policy or "")

    @property
    def described(self) -> str:
        """How log lines name whose backup it is: "policy NAME" or "app NAME"."""
        return f"policy {self.policy}" if self.policy else f"app {self.subject}"

    @property
    def event_target(self) -> tuple[str, str]:
        """Where the run's events are recorded: the policy, else the app."""
        return ("BackupPolicy", self.policy) if self.policy else ("App", self.subject)

    @property
    def notice_subject(self) -> Subject | None:
        """What the Notifiers hear the run is about; None for a restore's safety backup,
        whose outcome is the restore's."""
        if self.tags.get("safety") == "true":
            return None
        return Subject(*self.event_target, app=self.app or "", policy=self.policy or "", storage=self.storage)


def policy_key(name: str) -> str:
    """The work key of a policy without an app (host paths only)."""
    return f"policy:{name}"


def new_backup_id(subject: str, when: datetime) -> str:
    return f"{subject}-{when.astimezone(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class BackupRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._counted: set[str] = set()  # dumps whose tables and rows were counted

    def create(self, request: BackupRequest) -> Backup:
        """The backup's pending row, made when it is asked for; run() carries it to its end."""
        now = self.runtime.clock()
        return self.runtime.catalog.add_backup(
            Backup(
                backup_id=new_backup_id(request.subject, now),
                app_id=request.subject,
                app_name=request.subject,
                backup_type=request.backup_type.value,
                description=request.description,
                status=BackupStatus.PENDING,
                created_at=now,
                policy=request.policy,
                storage=request.storage,
                compressed=request.compression != "off",
                host=host_name(),
                owner=Owner.this_process().token,
                safety=request.tags.get("safety") == "true",
            )
        )

    def run(self, request: BackupRequest) -> Backup:
        """Take the backup; returns its completed row, or raises after recording it failed."""
        backup_id = request.pending_id or self.create(request).backup_id
        kind, name = request.event_target
        if request.notice_subject is not None:
            announce(self.runtime, BACKUP_STARTED, request.notice_subject, f"backup {backup_id} started", backup_id)
        items: list[BackupItem] = []
        self._counted.clear()
        try:
            for attempt in self.runtime.retrying(kind, name):
                with attempt:
                    result, repository = self._attempt(backup_id, request, items)
        except Exception as err:  # a bug or an OS error too: the row must never stay in_progress
            failure = err if isinstance(err, LifeboatError) else BackupCreateFailed(f"{err.__class__.__name__}: {err}")
            self._finish(backup_id, request, items, None, failure)
            raise
        finally:
            self.runtime.progress.pop(request.work_key, None)
        summary = result.snapshot.summary
        taken = SnapshotSummary(result.id, result.snapshot.parent, summary.bytes, summary.bytes_added, summary.files)
        if result.problems:
            problems = f"{len(result.problems)} problem(s): " + "; ".join(result.problems[:5])
            self._finish(backup_id, request, items, taken, BackupCreateFailed(problems))
            raise BackupCreateFailed(f"backup {backup_id} is incomplete: {problems}")
        losses = source_losses(self.runtime.catalog, request.policy, request.subject, items, self._counted)
        row = self._finish(backup_id, request, items, taken, None, losses, result.snapshot.tags["type"])
        if request.policy is not None and request.retention is not None:
            apply_retention(self.runtime, repository, request.policy, request.retention, ZoneInfo(request.timezone))
        self.runtime.repositories.measure(request.storage, repository)
        return row

    def _attempt(
        self, backup_id: str, request: BackupRequest, items: list[BackupItem]
    ) -> tuple[ArchiveResult, Repository]:
        """One try at the whole backup; a transient failure anywhere makes the run try again."""
        items.clear()
        repository = self.runtime.repositories.open(request.storage)
        client = self.runtime.docker() if request.app else None
        self.runtime.catalog.start_backup(backup_id, repository.storage.describe(), Owner.this_process().token)
        log.info("backup %s of %s starting", backup_id, request.described)
        with repository.locked(False, "backup", wall_clock, LOCK_WAIT):
            app = None
            if client is not None and request.app is not None:
                app = discover(client, request.app, request.databases, self.runtime.read_secret)
                items += _hook_items(run_hooks(client, app, request.hooks.pre, "pre"))
            elif not request.paths:
                raise NothingToBackUp("nothing to back up: no app and no paths")
            layout = snapshot_layout(client, app, request.include, request.paths)
            if not layout.sources:
                raise NothingToBackUp(
                    f"app {request.app!r} has nothing to back up: no volume, bind-mounted directory or database"
                    " matches the policy's include"
                )
            self._check_quota(request.storage, repository, layout)
            result = self._archive(backup_id, repository, app, request, layout)
            items += layout.items
            if client is not None and app is not None:
                items += _hook_items(run_hooks(client, app, request.hooks.post, "post"))
        return result, repository

    def _archive(
        self, backup_id: str, repository: Repository, app: App | None, request: BackupRequest, layout: Layout
    ) -> ArchiveResult:
        quiescer = None
        if app is not None and request.consistency != Consistency.ONLINE:
            action = "paused" if request.consistency == Consistency.PAUSE else "stopped"
            quiescer = Quiescer(
                self.runtime.docker(),
                self.runtime.ledger,
                app.name,
                app.containers,
                action,
                backup_id,
                self.runtime.clock,
            )
        parent = self._parent(repository, request)
        archiver = Archiver(
            repository,
            parent=parent,
            compression=request.compression,
            uploads=self.runtime.transfers,
            progress=functools.partial(self.runtime.progress.__setitem__, request.work_key),
            after_streams=quiescer.quiesce if quiescer is not None else None,
        )
        tags = {
            **({"app": request.app} if request.app else {}),
            **({"policy": request.policy} if request.policy else {}),
            # With nothing to compare with, an incremental or differential reads everything: a full.
            "type": request.backup_type.value if parent is not None else BackupType.FULL.value,
            "backup": backup_id,
            **request.tags,
        }
        row = self.runtime.catalog.get_backup(backup_id)
        time_text = row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        try:
            result = archiver.run(layout.sources, tags, host_name(), time_text)
        finally:
            if quiescer is not None:
                quiescer.resume()
        for item in layout.items:
            stats = result.sources.get(item.name)
            if stats is not None:
                item.files, item.bytes = stats.files, stats.bytes
        for item, dump in zip([i for i in layout.items if i.kind == ItemKind.DUMP], layout.dumps, strict=True):
            item.exit_code, item.bytes = 0, dump.bytes_read
            found = layout.inventory(item.name)
            if found is not None:
                item.tables = sum(len(tables) for tables in found.values())
                item.rows = sum(sum(tables.values()) for tables in found.values())
                self._counted.add(item.name)
        return result

    def _parent(self, repository: Repository, request: BackupRequest) -> SnapshotEntry | None:
        """Incremental: the subject's latest snapshot; differential: its latest full one."""
        if request.backup_type == BackupType.FULL:
            return None
        tags: dict[str, str | None] = {"app": request.app} if request.app else {"policy": request.policy or ""}
        if request.backup_type == BackupType.DIFFERENTIAL:
            tags["type"] = BackupType.FULL.value
        return repository.latest_snapshot(tags)

    def _check_quota(self, storage: str, repository: Repository, layout: Layout) -> None:
        """Before anything is written: the repository's size (as last measured) against the
        storage's quotaBytes, and the files to read against limits.max_backup_size_gb."""
        quota = self.runtime.repositories.quota_bytes(storage)
        if quota is not None:
            used = self.runtime.repositories.size(storage, repository)
            if used >= quota:
                raise QuotaExceeded(
                    f"the repository holds {used} bytes, at or over its quota of {quota} bytes; "
                    "prune, raise quotaBytes, or shorten retention"
                )
        limit = self.runtime.max_backup_bytes
        if limit is not None:
            size = sum(_tree_size(s.path) for s in layout.sources if isinstance(s, DirectorySource))
            if size > limit:
                raise QuotaExceeded(
                    f"the files to back up hold {size} bytes, over limits.max_backup_size_gb ({limit} bytes)"
                )

    def _finish(
        self,
        backup_id: str,
        request: BackupRequest,
        items: list[BackupItem],
        snapshot: SnapshotSummary | None,
        failure: LifeboatError | None,
        warnings: list[str] | None = None,
        backup_type: str | None = None,
    ) -> Backup:
        """The row's end, its events and its log lines."""
        error = (failure.code, str(failure)) if failure is not None else None
        outcome = BackupOutcome(self.runtime.clock(), snapshot, error, tuple(warnings or ()), backup_type)
        row = self.runtime.catalog.finish_backup(backup_id, outcome, items)
        kind, name = request.event_target
        for warning in warnings or []:
            reason, _, message = warning.partition(": ")
            log.warning("backup %s of %s: %s", backup_id, request.described, message)
            self.runtime.event(kind, name, reason, f"backup {backup_id}: {message}", True)
        if failure is not None:
            log.warning("backup %s of %s failed: %s", backup_id, request.described, failure)
            self.runtime.event(kind, name, failure.code, f"backup {backup_id}: {failure}", True)
        else:
            log.info(
                "backup %s of %s completed: %d files, %d bytes (%d added)",
                backup_id,
                request.described,
                row.files,
                row.size_bytes,
                row.added_bytes,
            )
            self.runtime.event(kind, name, "BackupCompleted", f"backup {backup_id}")
        if request.notice_subject is not None:
            cause = f"backup {backup_id}: {failure}" if failure is not None else None
            backup_ended(self.runtime, request.notice_subject, backup_id, cause, list(warnings or []))
        return row


def _hook_items(results: list[HookResult]) -> list[BackupItem]:
    return [
        BackupItem(backup_id="", kind=ItemKind.HOOK, name=r.name, exit_code=r.exit_code, error=r.error) for r in results
    ]


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total
