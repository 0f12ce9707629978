"""The one exception tree of Lifeboat. Imports nothing from the project.

Every LifeboatError subclass, wherever it is defined (a module name after one that lives
outside this file), with the code the API answers with:

```
LifeboatError                 LIFEBOAT_ERROR; str(e) is one sentence a person can act on
├── InvalidResource           INVALID_RESOURCE → Ready=False, reason=Invalid; carries each problem
├── InvalidConfig             INVALID_CONFIG      the configuration file or a secret reference is wrong
├── WriteConflict             WRITE_CONFLICT      a file's spec changed since it was read: re-read, retry
├── ResourceNotFound          RESOURCE_NOT_FOUND  no resource of that kind and name
├── CatalogError              CATALOG_ERROR       the catalog database cannot be opened, migrated or used
├── StorageError              STORAGE_ERROR       permanent storage failure (permission, read-only)
│   ├── StorageFull           STORAGE_FULL        no space left (or quota): says how much was needed and where
│   └── ObjectNotFound        OBJECT_NOT_FOUND
├── RepositoryError           REPOSITORY_ERROR    the repository cannot be used as asked
│   ├── WrongPassphrase       WRONG_PASSPHRASE
│   ├── RepositoryLocked      REPOSITORY_LOCKED   (repository/locks.py) another process holds the lock
│   └── LeaseLost             LEASE_LOST          (repository/locks.py) our lock lapsed: commit nothing
├── TransientError            TRANSIENT           retried (storage/retrying.py, the runs in reconciler/)
│   ├── StorageUnavailable    STORAGE_UNAVAILABLE
│   └── DockerUnavailable     DOCKER_UNAVAILABLE
├── InvalidRequest            INVALID_REQUEST     a request asks for what cannot be done
├── Conflict                  CONFLICT            the request contradicts the current state (409)
│   └── Busy                  RESOURCE_BUSY       other work holds what the request needs
├── AppNotFound               APP_NOT_FOUND       no Compose project of that name on this Docker host
├── BackupNotFound            BACKUP_NOT_FOUND
├── BackupCreateFailed        BACKUP_CREATE_FAILED
│   ├── NothingToBackUp       the app has no volume, mount, database or path to read
│   ├── DumpFailed            a database dump exited non-zero, was empty or cut short
│   └── HookFailed            a pre/post hook failed with onError: fail
├── BackupCorrupted           BACKUP_CORRUPTED
├── RestoreFailed             RESTORE_FAILED
├── QuotaExceeded             BACKUP_QUOTA_EXCEEDED
├── DeliveryFailed            DELIVERY_FAILED     a Notifier's destination refused or missed a message
└── RangeNotSatisfiable       RANGE_NOT_SATISFIABLE (api/download.py) a Range outside the download
```

Messages say what, where, and what next, and never hold a secret. The mapping from
codes to HTTP statuses lives once, in `controller.api`. Inside the repository, damage is
first told by plain exceptions (AuthenticationFailed, BlobDamaged, IndexDamaged,
PackDamaged) that the repository turns into BackupCorrupted where a caller sees them.
"""

from __future__ import annotations

from dataclasses import dataclass


class LifeboatError(Exception):
    """Base of every error Lifeboat raises on purpose."""

    code: str = "LIFEBOAT_ERROR"


@dataclass(frozen=True)
class ResourceProblem:
    """One problem in one resource file: where it is and what was expected."""

    file: str
    line: int | None
    field: str
    message: str
    kind: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        what = f'{self.kind} "{self.name}" ' if self.kind and self.name else (f"{self.kind} " if self.kind else "")
        field = f"{self.field}: " if self.field else ""
        return f"{where} {what}{field}{self.message}"


class InvalidResource(LifeboatError):
    """A resource document failed validation; carries every problem found."""

    code = "INVALID_RESOURCE"

    def __init__(self, problems: list[ResourceProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class InvalidConfig(LifeboatError):
    """The global configuration file is unreadable or has a bad field."""

    code = "INVALID_CONFIG"


class WriteConflict(LifeboatError):
    """The document's spec changed on disk since the caller read it; re-read and retry."""

    code = "WRITE_CONFLICT"


class ResourceNotFound(LifeboatError):
    """No resource of that kind and name exists in the resources directory."""

    code = "RESOURCE_NOT_FOUND"


class CatalogError(LifeboatError):
    """The catalog database cannot be opened, migrated or written."""

    code = "CATALOG_ERROR"


class StorageError(LifeboatError):
    """A storage operation failed and retrying will not help (no space, permission denied)."""

    code = "STORAGE_ERROR"


class StorageFull(StorageError):
    """The storage has no room for an object (disk full, filesystem quota)."""

    code = "STORAGE_FULL"


class ObjectNotFound(StorageError):
    """The object does not exist in the storage."""

    code = "OBJECT_NOT_FOUND"


class RepositoryError(LifeboatError):
    """The repository cannot be used as asked (not initialised, already initialised, ...)."""

    code = "REPOSITORY_ERROR"


class WrongPassphrase(RepositoryError):
    """No key file of the repository opens with the given passphrase."""

    code = "WRONG_PASSPHRASE"


class TransientError(LifeboatError):
    """A failure that may succeed when tried again (connection reset, throttling, 5xx)."""

    code = "TRANSIENT"


class StorageUnavailable(TransientError):
    """The storage backend could not be reached or answered with a retryable error."""

    code = "STORAGE_UNAVAILABLE"


class DockerUnavailable(TransientError):
    """The Docker engine could not be reached."""

    code = "DOCKER_UNAVAILABLE"


class InvalidRequest(LifeboatError):
    """A request asks for something Lifeboat cannot do as asked (e.g. an unencrypted backup)."""

    code = "INVALID_REQUEST"


class Conflict(LifeboatError):
    """The request contradicts the current state (e.g. a policy managed in files, not by the API)."""

    code = "CONFLICT"


class Busy(Conflict):
    """Other work holds what the request needs (a restore of the app, a running backup)."""

    code = "RESOURCE_BUSY"


class AppNotFound(LifeboatError):
    """No Compose project of that name on this Docker host."""

    code = "APP_NOT_FOUND"


class BackupNotFound(LifeboatError):
    """No backup (or snapshot) with that id, or none that matches the request."""

    code = "BACKUP_NOT_FOUND"


class BackupCreateFailed(LifeboatError):
    """A backup did not complete; its catalog row says failed."""

    code = "BACKUP_CREATE_FAILED"


class NothingToBackUp(BackupCreateFailed):
    """The app or policy has no volume, mount, database or path to read."""


class DumpFailed(BackupCreateFailed):
    """A database dump exited non-zero, was empty or was cut short; carries the tool's stderr."""


class HookFailed(BackupCreateFailed):
    """A pre or post hook failed with onError: fail."""


class BackupCorrupted(LifeboatError):
    """Repository data failed authentication or is missing: `lifeboat repo check` says more."""

    code = "BACKUP_CORRUPTED"


class RestoreFailed(LifeboatError):
    """A restore step failed; the run rolls back to its safety backup."""

    code = "RESTORE_FAILED"


class QuotaExceeded(LifeboatError):
    """The storage's quotaBytes or limits.max_backup_size_gb would be passed."""

    code = "BACKUP_QUOTA_EXCEEDED"


class DeliveryFailed(LifeboatError):
    """A Notifier's destination did not take a message: refused, unreachable, or timed out."""

    code = "DELIVERY_FAILED"
