"""Key files: passphrases, several keys, the last key, recovery kits."""

from __future__ import annotations

import pytest

from controller.errors import RepositoryError, WrongPassphrase
from controller.repository.keys import (
    list_keys,
    master_key_from_kit,
    recovery_kit,
    remove_key,
    write_key_file,
)
from controller.repository.repository import Repository
from controller.storage.memory import MemoryStorage
from tests.support.repository import PASSPHRASE, T0, small_repository


def test_wrong_passphrase_is_one_clear_error() -> None:
    storage = MemoryStorage()
    small_repository(storage)
    with pytest.raises(WrongPassphrase) as caught:
        Repository.open(storage, b"wrong")
    assert str(caught.value) == "memory: wrong passphrase (no key file opens with it)"


def test_empty_storage_is_not_a_repository() -> None:
    with pytest.raises(RepositoryError, match="no repository here"):
        Repository.open(MemoryStorage(), PASSPHRASE)


def test_init_twice_is_refused() -> None:
    storage = MemoryStorage()
    small_repository(storage)
    with pytest.raises(RepositoryError, match="already exists"):
        small_repository(storage)


def test_added_key_opens_the_same_repository_and_removal_revokes_it() -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    second = write_key_file(storage, repository.master, b"second secret", T0, "h", "u")
    assert Repository.open(storage, b"second secret").config.id == repository.config.id
    assert len(list_keys(storage)) == 2
    remove_key(storage, second)
    with pytest.raises(WrongPassphrase):
        Repository.open(storage, b"second secret")
    assert Repository.open(storage, PASSPHRASE).config.id == repository.config.id


def test_recovery_kit_opens_without_any_key_file() -> None:
    storage = MemoryStorage()
    repository = small_repository(storage)
    kit = recovery_kit(repository.master, repository.config.id)
    master, repository_id = master_key_from_kit(kit)
    assert repository_id == repository.config.id
    for info in list(storage.list("keys/")):
        storage.remove(info.key)  # every passphrase lost
    assert Repository.open_with_master_key(storage, master).config.id == repository.config.id


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "LIFEBOAT RECOVERY KIT v1\nrepository: x\nmaster-key: AAAA\n",
        "LIFEBOAT RECOVERY KIT v1\nrepository: x\n",
    ],
)
def test_damaged_kits_are_refused_clearly(text: str) -> None:
    with pytest.raises(RepositoryError, match="recovery kit"):
        master_key_from_kit(text)
