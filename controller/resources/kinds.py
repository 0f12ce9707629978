"""The registry of kinds: a literal mapping, plus the names people type on the command line."""

from __future__ import annotations

from controller.resources.backup_policy import BackupPolicy, BackupPolicyStatus
from controller.resources.backup_storage import BackupStorage, BackupStorageStatus
from controller.resources.notifier import Notifier, NotifierStatus
from controller.resources.restore import Restore, RestoreStatus

Resource = BackupStorage | BackupPolicy | Restore | Notifier
Status = BackupStorageStatus | BackupPolicyStatus | RestoreStatus | NotifierStatus

KINDS: dict[str, type[Resource]] = {
    "BackupStorage": BackupStorage,
    "BackupPolicy": BackupPolicy,
    "Restore": Restore,
    "Notifier": Notifier,
}

STATUS_TYPES: dict[str, type[Status]] = {
    "BackupStorage": BackupStorageStatus,
    "BackupPolicy": BackupPolicyStatus,
    "Restore": RestoreStatus,
    "Notifier": NotifierStatus,
}

_ALIASES = {
    "backupstorage": "BackupStorage",
    "backupstorages": "BackupStorage",
    "storage": "BackupStorage",
    "storages": "BackupStorage",
    "backuppolicy": "BackupPolicy",
    "backuppolicies": "BackupPolicy",
    "policy": "BackupPolicy",
    "policies": "BackupPolicy",
    "restore": "Restore",
    "restores": "Restore",
    "notifier": "Notifier",
    "notifiers": "Notifier",
}


def resolve_kind(text: str) -> str | None:
    """The canonical kind for what a person typed (`policies`, `BackupPolicy`, `storage`...)."""
    return _ALIASES.get(text.lower())


def kind_choices() -> str:
    return ", ".join(KINDS)
