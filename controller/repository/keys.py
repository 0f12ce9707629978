"""Key files: the master key wrapped by passphrase-derived keys, several per repository.

`keys/<hash>` holds JSON: the scrypt parameters and salt, and the master key sealed with
the derived key. Any key file opens the repository; removing the last one is refused.
A recovery kit is the master key itself, printable, which with the storage restores all.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import datetime

from controller.errors import ObjectNotFound, RepositoryError, WrongPassphrase
from controller.repository.crypto import AuthenticationFailed, KdfParams, MasterKey, content_hash
from controller.storage.base import Storage

_KEY_AAD = b"lifeboat key v1"
KIT_HEADER = "LIFEBOAT RECOVERY KIT v1"


@dataclass(frozen=True)
class KeyInfo:
    id: str
    created: str
    host: str
    user: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_key_file(
    storage: Storage,
    master: MasterKey,
    passphrase: bytes,
    created: datetime,
    host: str,
    user: str,
    params: KdfParams | None = None,
) -> str:
    """Wrap `master` with `passphrase` into a new key file; return its id."""
    params = params or KdfParams()
    salt = os.urandom(32)
    wrapped = MasterKey(params.derive(passphrase, salt), b"\0" * 32).seal(master.to_bytes(), _KEY_AAD)
    document = {
        "version": 1,
        "kdf": "scrypt",
        "n": params.n,
        "r": params.r,
        "p": params.p,
        "salt": _b64(salt),
        "data": _b64(wrapped),
        "created": created.isoformat(),
        "host": host,
        "user": user,
    }
    raw = json.dumps(document, sort_keys=True).encode()
    key_id = content_hash(raw)
    storage.save(f"keys/{key_id}", raw)
    return key_id


def _unwrap(raw: bytes, passphrase: bytes) -> MasterKey:
    document = json.loads(raw)
    if document.get("kdf") != "scrypt" or document.get("version") != 1:
        raise RepositoryError("unsupported key file format")
    params = KdfParams(document["n"], document["r"], document["p"])
    kek = params.derive(passphrase, base64.b64decode(document["salt"]))
    plain = MasterKey(kek, b"\0" * 32).open(base64.b64decode(document["data"]), _KEY_AAD)
    return MasterKey.from_bytes(plain)


def list_keys(storage: Storage) -> list[KeyInfo]:
    infos = []
    for info in storage.list("keys/"):
        document = json.loads(storage.load(info.key))
        infos.append(KeyInfo(info.key.removeprefix("keys/"), document["created"], document["host"], document["user"]))
    return sorted(infos, key=lambda k: k.created)


def open_master_key(storage: Storage, passphrase: bytes) -> tuple[MasterKey, str]:
    """The master key and the id of the key file it opened. Raises WrongPassphrase."""
    found = False
    for info in storage.list("keys/"):
        found = True
        try:
            return _unwrap(storage.load(info.key), passphrase), info.key.removeprefix("keys/")
        except AuthenticationFailed:
            continue
    if not found:
        raise RepositoryError(f"{storage.describe()}: no repository here (no key files); run `lifeboat repo init`")
    raise WrongPassphrase(f"{storage.describe()}: wrong passphrase (no key file opens with it)")


def remove_key(storage: Storage, key_id: str) -> None:
    ids = [k.id for k in list_keys(storage)]
    if key_id not in ids:
        raise ObjectNotFound(f"no key {key_id!r}; `lifeboat repo key list` shows the ids")
    if len(ids) == 1:
        raise RepositoryError("refusing to remove the last key: the repository could never be opened again")
    storage.remove(f"keys/{key_id}")


def recovery_kit(master: MasterKey, repository_id: str) -> str:
    """A text that, with the storage, opens the repository without any passphrase."""
    body = base64.b32encode(master.to_bytes()).decode()
    groups = " ".join(body[i : i + 8] for i in range(0, len(body), 8))
    return f"{KIT_HEADER}\nrepository: {repository_id}\nmaster-key: {groups}\n"


def master_key_from_kit(text: str) -> tuple[MasterKey, str]:
    """Parse a recovery kit: (master key, repository id). Raises RepositoryError when malformed."""
    lines = dict(line.split(":", 1) for line in text.strip().splitlines()[1:] if ":" in line)
    if not text.startswith(KIT_HEADER) or "master-key" not in lines:
        raise RepositoryError("not a Lifeboat recovery kit (expected its first line and a master-key line)")
    try:
        raw = base64.b32decode(lines["master-key"].replace(" ", "").strip())
        return MasterKey.from_bytes(raw), lines.get("repository", "").strip()
    except (ValueError, TypeError):
        raise RepositoryError("the recovery kit's master-key line is damaged") from None
