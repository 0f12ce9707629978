"""Keys and sealing: the master key, blob ids, AES-256-GCM, and passphrase wrapping.

The master key is 64 random bytes: 32 for AES-256-GCM and 32 for keyed BLAKE3 ids, so
that a blob id reveals nothing about its content to anyone without the key.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

NONCE_SIZE = 12
TAG_SIZE = 16
ID_SIZE = 32


class _Nonces(threading.local):
    """Random nonces cut from a 4 KiB draw of os.urandom, one system call per 341 nonces
    instead of one per blob (that call was an eighth of a backup of small files). Per
    thread, and drawn again in a forked child, so no two sealers can share bytes."""

    def __init__(self) -> None:
        self.pool, self.position = b"", 0

    def take(self) -> bytes:
        if self.position + NONCE_SIZE > len(self.pool):
            self.pool, self.position = os.urandom(NONCE_SIZE * 341), 0
        self.position += NONCE_SIZE
        return self.pool[self.position - NONCE_SIZE : self.position]

    def forget(self) -> None:
        self.pool, self.position = b"", 0


_nonces = _Nonces()
os.register_at_fork(after_in_child=_nonces.forget)  # only the forking thread lives on in a child


class AuthenticationFailed(Exception):
    """Ciphertext or its associated data was altered, or the key is wrong."""


@dataclass(frozen=True)
class MasterKey:
    encryption: bytes  # 32 bytes, AES-256-GCM
    id_key: bytes  # 32 bytes, keyed BLAKE3

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32))

    def to_bytes(self) -> bytes:
        return self.encryption + self.id_key

    @classmethod
    def from_bytes(cls, raw: bytes) -> MasterKey:
        if len(raw) != 64:
            raise ValueError("a master key is 64 bytes")
        return cls(raw[:32], raw[32:])

    @cached_property
    def _aead(self) -> AESGCM:
        """Made once per key: making it costs more than sealing a small blob with it."""
        return AESGCM(self.encryption)

    def blob_id(self, plaintext: bytes | memoryview) -> bytes:
        """Keyed BLAKE3 of the plaintext (BLAKE3 releases the GIL on large inputs)."""
        return blake3.blake3(plaintext, key=self.id_key, max_threads=1).digest()

    def seal(self, plaintext: bytes | memoryview, associated: bytes) -> bytes:
        """nonce || AES-256-GCM(plaintext) || tag, bound to `associated`."""
        nonce = _nonces.take()
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), associated)

    def seal_into(self, plaintext: bytes, associated: bytes, target: memoryview) -> None:
        """`seal`, written into `target` (exactly `sealed_size(len(plaintext))` bytes): a
        pack is sealed into a buffer it reuses, where fresh buffers cost a page fault for
        every 4 KiB stored (a third of an app backup's system time)."""
        nonce = _nonces.take()
        target[:NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, plaintext, associated, target[NONCE_SIZE:])

    def open(self, sealed: bytes | memoryview, associated: bytes) -> bytes:
        sealed = bytes(sealed)
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise AuthenticationFailed("sealed data is too short")
        try:
            return self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated)
        except InvalidTag:
            raise AuthenticationFailed("authentication failed") from None


def sealed_size(plaintext_length: int) -> int:
    return NONCE_SIZE + plaintext_length + TAG_SIZE


@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters, stored in each key file so they can be raised later."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=32, n=self.n, r=self.r, p=self.p).derive(passphrase)


def content_hash(data: bytes | memoryview) -> str:
    """Unkeyed BLAKE3 of stored bytes: the name of write-once objects (packs, indexes...)."""
    return content_hasher().update(data).hexdigest()


def content_hasher() -> blake3.blake3:
    """content_hash fed in parts: `update` each, then `hexdigest`."""
    return blake3.blake3(max_threads=1)
