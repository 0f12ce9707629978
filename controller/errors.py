"""The one exception tree of Lifeboat. Imports nothing from the project.

```
LifeboatError              .code; str(e) is one sentence a person can act on
├── InvalidResource        → Ready=False, reason=Invalid
├── WriteConflict          a file's spec changed since it was read: re-read and retry
├── CatalogError           the catalog database cannot be opened or migrated
├── StorageError           permanent storage failure (no space, permission, bad key)
│   └── ObjectNotFound
├── RepositoryError        the repository cannot be used as asked (no such repository, locked)
│   └── WrongPassphrase
├── TransientError         retried (storage/retrying.py, the reconciler's action runner)
│   ├── StorageUnavailable
│   └── DockerUnavailable
├── InvalidRequest         a request (API body, CLI options) asks for what cannot be done
├── Conflict               the request contradicts the current state (409)
│   └── Busy               the app or backup is in use by other work: try again later
├── AppNotFound            no Compose project of that name on this Docker host
├── BackupNotFound         BACKUP_NOT_FOUND
├── BackupCreateFailed     BACKUP_CREATE_FAILED
│   ├── NothingToBackUp    the app has no volume, mount, database or path to read
│   ├── DumpFailed         a database dump exited non-zero, was empty or cut short
│   └── HookFailed         a pre/post hook failed with onError: fail
├── BackupCorrupted        BACKUP_CORRUPTED
├── RestoreFailed          RESTORE_FAILED
└── QuotaExceeded          BACKUP_QUOTA_EXCEEDED
```

Messages say what, where, and what next, and never hold a secret. The mapping from
codes to HTTP statuses lives once, in `controller.api`.
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
    code = "APP_NOT_FOUND"


class BackupNotFound(LifeboatError):
    code = "BACKUP_NOT_FOUND"


class BackupCreateFailed(LifeboatError):
    code = "BACKUP_CREATE_FAILED"


class NothingToBackUp(BackupCreateFailed):
    pass


class DumpFailed(BackupCreateFailed):
    pass


class HookFailed(BackupCreateFailed):
    pass


class BackupCorrupted(LifeboatError):
    code = "BACKUP_CORRUPTED"


class RestoreFailed(LifeboatError):
    code = "RESTORE_FAILED"


class QuotaExceeded(LifeboatError):
    code = "BACKUP_QUOTA_EXCEEDED"
