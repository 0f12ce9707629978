"""API keys: random, shown once, stored as hashes, compared in constant time, never logged.

A key is 32 random bytes (the `lb_` prefix makes a leaked one easy to find in a scan), so a
plain SHA-256 is the right hash: there is nothing to brute-force as with passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from controller.errors import InvalidConfig
from controller.resources.atomic_write import write_atomically
from controller.resources.config import ApiKeyEntry
from controller.resources.documents import YamlSyntaxError, dump_yaml, parse_yaml

_ENTRIES = TypeAdapter(list[ApiKeyEntry])


def new_key() -> str:
    return "lb_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configuration's keys plus the keys file's, which is read again when it changes:
    a key created or revoked with `lifeboat apikey` counts without a restart."""

    def __init__(self, configured: list[ApiKeyEntry], keys_file: Path | None = None) -> None:
        self.configured, self.keys_file = configured, keys_file
        self._from_file: list[ApiKeyEntry] = []
        self._file_state: tuple[int, int] | None = None

    def entries(self) -> list[ApiKeyEntry]:
        if self.keys_file is not None:
            try:
                info = self.keys_file.stat()
                state: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
            except FileNotFoundError:
                state = None
            if state != self._file_state:
                self._from_file = read_keys_file(self.keys_file) if state else []
                self._file_state = state
        return self.configured + self._from_file

    def find(self, presented: str | None) -> ApiKeyEntry | None:
        """The entry of the presented key; every entry is compared, so the time taken says
        nothing about which one (or how much of one) matched."""
        if not presented:
            return None
        digest = hash_key(presented)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.hash, digest):
                found = entry
        return found


def read_keys_file(path: Path) -> list[ApiKeyEntry]:
    if not path.exists():
        return []
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")) or []
        return _ENTRIES.validate_python(data)
    except (OSError, YamlSyntaxError) as err:
        raise InvalidConfig(f"{path}: cannot read the API keys file: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidConfig(f"{path} [{field}]: {first['msg']}") from None


def write_keys_file(path: Path, entries: list[ApiKeyEntry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump_yaml([e.model_dump() for e in entries])
    write_atomically(path, text, mode=0o600)
