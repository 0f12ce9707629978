"""Read a secret reference at use time. The value never goes back into YAML, status or logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from pydantic import BaseModel

from controller.errors import InvalidConfig
from controller.resources.meta import SecretRef


def read_secret(ref: SecretRef, environ: Mapping[str, str], what: str) -> bytes:
    """The secret's bytes (a file's trailing newline dropped). Raises InvalidConfig naming
    the reference, never the value."""
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            raise InvalidConfig(f"{what}: environment variable {ref.env} is not set")
        return value.encode()
    assert ref.file is not None
    try:
        return Path(ref.file).read_bytes().rstrip(b"\r\n")
    except OSError as err:
        raise InvalidConfig(f"{what}: cannot read secret file {ref.file}: {err.strerror}") from None


def database_password_reader(environ: Mapping[str, str]) -> Callable[[SecretRef], str]:
    """How the runs read the database passwords a policy names by reference."""

    def read(ref: SecretRef) -> str:
        return read_secret(ref, environ, "database password").decode()

    return read


def secret_refs(value: object) -> Iterator[SecretRef]:
    """Every secret reference a resource holds, however deep (what must never leave the host)."""
    if isinstance(value, SecretRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_refs(getattr(value, name))
    elif isinstance(value, list | tuple):
        for element in value:
            yield from secret_refs(element)
    elif isinstance(value, dict):
        for element in value.values():
            yield from secret_refs(element)
