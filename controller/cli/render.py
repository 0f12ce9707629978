"""Turn resources and catalog rows into tables, YAML or JSON. No decisions are made here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controller.cli.text import human_bytes
from controller.resources.backup_policy import BackupPolicy
from controller.resources.backup_storage import BackupStorage
from controller.resources.documents import dump_yaml
from controller.resources.kinds import Resource
from controller.resources.loader import LoadedResource
from controller.resources.meta import find_condition
from controller.resources.notifier import WARNINGS, Notifier, NotifierStatus
from controller.resources.restore import Restore

if TYPE_CHECKING:
    from controller.catalog.models import Backup, BackupItem, Event, RestoreRun


def resource_document(loaded: LoadedResource) -> dict[str, Any]:
    data = loaded.resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["metadata"]["generation"] = loaded.generation
    return data


def dump(data: Any, output: str) -> str:
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=False)
    return dump_yaml(data).rstrip("\n")


def _age(moment: datetime | None) -> str:
    """Every time a table shows is UTC, and its header says so."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _last_result(policy: BackupPolicy) -> str:
    """The latest finished backup: Completed, its warning, or Failed with the error code."""
    found = find_condition(policy.status.conditions, "LastBackupSucceeded") if policy.status else None
    if found is None:
        return "-"
    return found.reason if found.status.value == "True" else f"Failed ({found.reason})"


def _verified(policy: BackupPolicy) -> str:
    """The latest drill: "True (12.3s)" with its RTO, "False (DrillFailed)", or "-" when none ran."""
    found = find_condition(policy.status.conditions, "Verified") if policy.status else None
    if found is None:
        return "-"
    drill = policy.status.last_drill if policy.status else None
    if found.status.value == "True" and drill is not None and drill.duration_seconds is not None:
        return f"True ({drill.duration_seconds:.1f}s)"
    return f"{found.status.value} ({found.reason})"


def _ready(resource: Resource) -> str:
    status = resource.status
    conditions = status.conditions if status is not None else []
    wanted = "Succeeded" if isinstance(resource, Restore) else "Ready"
    condition = find_condition(conditions, wanted)
    if condition is None:
        return "Unknown"
    return f"{condition.status.value} ({condition.reason})"


def resource_rows(kind: str, resources: Sequence[LoadedResource]) -> tuple[list[str], list[list[str]]]:
    if kind == "BackupStorage":
        return ["NAME", "LOCATION", "READY", "SIZE"], [
            _storage_row(r.resource) for r in resources if isinstance(r.resource, BackupStorage)
        ]
    if kind == "BackupPolicy":
        return (
            [
                "NAME",
                "APP",
                "STORAGE",
                "SCHEDULE",
                "SUSPEND",
                "READY",
                "LAST RESULT",
                "LAST BACKUP (UTC)",
                "NEXT RUN (UTC)",
                "VERIFIED",
            ],
            [_policy_row(r.resource) for r in resources if isinstance(r.resource, BackupPolicy)],
        )
    if kind == "Notifier":
        return ["NAME", "DESTINATION", "EVENTS", "SELECTOR", "READY", "LAST DELIVERY (UTC)", "LAST ERROR"], [
            _notifier_row(r.resource) for r in resources if isinstance(r.resource, Notifier)
        ]
    return (
        ["NAME", "BACKUP", "TARGET", "PHASE", "MESSAGE"],
        [_restore_row(r.resource) for r in resources if isinstance(r.resource, Restore)],
    )


def _storage_row(storage: BackupStorage) -> list[str]:
    spec = storage.spec
    if spec.local is not None:
        location = spec.local.path
    else:
        assert spec.s3 is not None
        location = f"s3://{spec.s3.bucket}/{spec.s3.prefix}".rstrip("/")
    size = storage.status.size_bytes if storage.status else None
    return [storage.metadata.name, location, _ready(storage), human_bytes(size)]


def _policy_row(policy: BackupPolicy) -> list[str]:
    spec, status = policy.spec, policy.status
    schedule = "-"
    if spec.schedule is not None:
        schedule = spec.schedule.cron or f"{spec.schedule.frequency} {spec.schedule.time}"
    last = status.last_backup.time if status and status.last_backup else None
    next_run = status.next_run_at if status else None
    target = spec.app or ",".join(spec.paths)
    return [
        policy.metadata.name,
        target,
        spec.storage,
        schedule,
        str(spec.suspend).lower(),
        _ready(policy),
        _last_result(policy),
        _age(last),
        _age(next_run),
        _verified(policy),
    ]


def _notifier_row(notifier: Notifier) -> list[str]:
    spec, status = notifier.spec, notifier.status
    if spec.healthchecks is not None:
        events = "backup runs"
    else:
        events = "warnings" if set(spec.events) == set(WARNINGS) else ",".join(spec.events)
    chosen = spec.selector.model_dump(exclude_defaults=True)
    chosen["labels"] = [f"{key}={value}" for key, value in spec.selector.labels.items()]
    selector = " ".join(f"{key}={','.join(values)}" for key, values in chosen.items() if values) or "all"
    last = status.last_delivery if status else None
    delivered = f"{_age(last.time)} {last.event}" if last else "-"
    return [notifier.metadata.name, spec.destination, events, selector, _ready(notifier), delivered, _error(status)]


def _error(status: NotifierStatus | None) -> str:
    error = status.last_error if status else None
    return error if error and len(error) <= 60 else (error[:59] + "…" if error else "-")


def _restore_row(restore: Restore) -> list[str]:
    spec, status = restore.spec, restore.status
    source = spec.backup or f"{spec.policy}@{spec.point_in_time.isoformat() if spec.point_in_time else 'latest'}"
    phase = status.phase.value if status else "Pending"
    return [restore.metadata.name, source, spec.target_app or "(source app)", phase, status.message if status else ""]


def restore_run_row(run: RestoreRun) -> list[str]:
    """A restore the CLI ran, in the Restore table: its run id stands for the name."""
    return [run.id, run.backup_id, run.target_app, run.phase, run.message]


def run_document(run: RestoreRun) -> dict[str, Any]:
    """A restore run as data: what `get restores -o yaml` and `describe restore RUN` show."""
    return {"kind": "RestoreRun", **run.model_dump(mode="json", exclude={"request", "owner", "stage"})}


def backup_rows(
    backups: Sequence[Backup], retention: Mapping[str, str] | None = None, wide: bool = False
) -> tuple[list[str], list[list[str]]]:
    """`retention`: what the policy's retention does next with each backup, by id. `wide`
    adds the storage, the files, the bytes the repository grew by and the snapshot."""
    outlook = retention or {}
    headers = ["ID", "APP", "POLICY", "TYPE", "STATUS", "REASON", "SIZE", "CREATED (UTC)", "RETENTION", "WARNINGS"]
    headers += ["STORAGE", "FILES", "ADDED", "SNAPSHOT"] if wide else []
    rows = []
    for b in backups:
        row = [
            b.backup_id + (" (safety)" if b.safety else ""),
            b.app_id,
            b.policy or "-",
            b.backup_type,
            b.status.value,
            b.error_code or "-",
            human_bytes(b.size_bytes),
            _age(b.created_at),
            outlook.get(b.backup_id, "-"),
            ",".join(w.split(": ", 1)[0] for w in b.warnings.split("; ")) if b.warnings else "-",
        ]
        if wide:
            row += [b.storage or "-", str(b.files), human_bytes(b.added_bytes), (b.snapshot_id or "-")[:12]]
        rows.append(row)
    return headers, rows


def item_rows(items: Sequence[BackupItem]) -> tuple[list[str], list[list[str]]]:
    """A backup's volumes, mounts, paths, dumps and hooks, each with its own outcome."""
    headers = ["ITEM", "KIND", "FILES", "SIZE", "TABLES", "ROWS", "RESULT"]
    rows = [
        [
            i.name,
            i.kind.value,
            str(i.files),
            human_bytes(i.bytes),
            str(i.tables) if i.kind.value == "dump" else "-",
            str(i.rows) if i.kind.value == "dump" else "-",
            i.error or ("ok" if i.exit_code in (None, 0) else f"exit {i.exit_code}"),
        ]
        for i in items
    ]
    return headers, rows


def event_rows(events: Sequence[Event]) -> tuple[list[str], list[list[str]]]:
    return ["TIME (UTC)", "TYPE", "REASON", "MESSAGE"], [[_age(e.time), e.type, e.reason, e.message] for e in events]
