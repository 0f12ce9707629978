"""Repository locks as leases: who may run beside whom, staleness, refresh, lost leases, skew."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.errors import RepositoryError
from controller.repository.locks import Lease, LeaseLost, RepositoryLocked, list_locks, remove_locks
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from controller.storage.memory import MemoryStorage
from tests.support.fault_injecting_storage import Fault, FaultInjectingStorage
from tests.support.repository import PASSPHRASE, T0, backup, random_bytes, small_repository, write_tree


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked() -> tuple[Repository, Clock]:
    clock = Clock()
    repository = small_repository(MemoryStorage(clock=clock))
    return repository, clock


def lease(repository: Repository, clock: Clock, exclusive: bool, purpose: str = "test") -> Lease:
    return Lease(repository.storage, repository.master, exclusive, purpose, clock)


def test_shared_locks_coexist(clocked: tuple[Repository, Clock]) -> None:
    repository, clock = clocked
    with lease(repository, clock, False).acquire(), lease(repository, clock, False).acquire():
        assert len(list_locks(repository.storage, repository.master, clock())) == 2
    assert list_locks(repository.storage, repository.master, clock()) == []


@pytest.mark.parametrize(("first", "second"), [(True, False), (False, True), (True, True)])
def test_exclusive_conflicts_name_the_holder(clocked: tuple[Repository, Clock], first: bool, second: bool) -> None:
    repository, clock = clocked
    with lease(repository, clock, first, "prune" if first else "backup").acquire():
        with pytest.raises(RepositoryLocked, match=r"is locked: (exclusive lock by prune|shared lock by backup)"):
            lease(repository, clock, second).acquire()
        assert len(list_locks(repository.storage, repository.master, clock())) == 1  # the loser left nothing


def test_a_waiting_exclusive_lock_gets_in_when_the_holder_leaves(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    repository = small_repository(storage)
    holder = Lease(storage, repository.master, False, "backup", lambda: datetime.now(UTC)).acquire()
    threading.Timer(0.5, holder.release).start()
    started = time.monotonic()
    with Lease(storage, repository.master, True, "prune", lambda: datetime.now(UTC)).acquire(
        wait=timedelta(seconds=10), poll=0.1
    ):
        assert time.monotonic() - started >= 0.4


def test_stale_locks_are_ignored_and_unlock_removes_only_them(clocked: tuple[Repository, Clock]) -> None:
    repository, clock = clocked
    lease(repository, clock, True, "dead prune").acquire()  # never released: its process "died"
    clock.now = T0 + timedelta(minutes=10)
    fresh = lease(repository, clock, False, "live backup")
    with pytest.raises(RepositoryLocked):
        fresh.acquire()
    clock.now = T0 + timedelta(minutes=31)
    live = lease(repository, clock, False, "live backup").acquire()  # the dead lock is stale now
    removed = remove_locks(repository.storage, repository.master, clock(), force=False)
    assert [lock.purpose for lock in removed] == ["dead prune"]
    assert [lock.purpose for lock in list_locks(repository.storage, repository.master, clock())] == ["live backup"]
    live.release()


def test_refresh_replaces_the_lock_object_and_keeps_it_fresh(clocked: tuple[Repository, Clock]) -> None:
    repository, clock = clocked
    held = lease(repository, clock, False, "long backup").acquire()
    first_key = held.key
    clock.now = T0 + timedelta(minutes=25)
    held.refresh()
    assert held.key != first_key
    clock.now = T0 + timedelta(minutes=40)  # 40 min after start, 15 after the refresh: not stale
    with pytest.raises(RepositoryLocked):
        lease(repository, clock, True, "prune").acquire()
    held.release()


def test_a_lease_removed_by_force_stops_the_writer_before_it_commits(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    repository = small_repository(storage)
    write_tree(tmp_path / "src", {"a": random_bytes(1, 100_000)})
    with repository.locked(False, "backup", lambda: datetime.now(UTC)) as held:
        remove_locks(storage, repository.master, datetime.now(UTC), force=True)  # an operator's unlock --force
        with pytest.raises(LeaseLost, match="was removed"):
            held.refresh()
        with pytest.raises(LeaseLost):
            backup(repository, tmp_path / "src")
    assert list(storage.list("snapshots/")) == []
    assert list(storage.list("index/")) == []  # nothing committed, not even a checkpoint


def test_a_writer_that_cannot_refresh_its_lease_stops_before_committing(tmp_path: Path) -> None:
    injector = FaultInjectingStorage(LocalStorage(tmp_path / "repo"))
    repository = small_repository(injector)  # type: ignore[arg-type]
    write_tree(tmp_path / "src", {"a": random_bytes(1, 100_000)})
    held = Lease(
        injector,
        repository.master,
        False,
        "backup",
        lambda: datetime.now(UTC),  # type: ignore[arg-type]
        refresh_every=timedelta(seconds=0.05),
    ).acquire()
    repository.lease = held
    injector.faults = [Fault("save", lambda key: key.startswith("locks/"), "transient", times=1000)]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            held.check()
        except LeaseLost:
            break
        time.sleep(0.02)
    with pytest.raises(LeaseLost, match="lost the backup lock"):
        backup(repository, tmp_path / "src")
    assert list(injector.inner.list("snapshots/")) == []
    repository.lease = None
    injector.faults = []
    held.release()


def test_clock_skew_against_the_storage_is_an_error(clocked: tuple[Repository, Clock]) -> None:
    repository, _ = clocked
    skewed = Lease(repository.storage, repository.master, False, "backup", lambda: T0 + timedelta(minutes=20))
    with pytest.raises(RepositoryError, match="clock differs from the storage's by 1200 s"):
        skewed.acquire()
    assert list(repository.storage.list("locks/")) == []


def test_prune_refuses_to_run_beside_a_backup_from_another_process(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    repository = small_repository(storage)
    Lease(storage, repository.master, False, "backup", lambda: datetime.now(UTC)).acquire()
    reopened = Repository.open(storage, PASSPHRASE)
    with (
        pytest.raises(RepositoryLocked, match="shared lock by backup"),
        reopened.locked(True, "prune", lambda: datetime.now(UTC)),
    ):
        pass
