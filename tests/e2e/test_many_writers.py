"""Two hosts back up different apps into one repository while a third forgets and prunes."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from controller.repository.checker import Checker
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.local import LocalStorage
from tests.e2e.conftest import LIFEBOAT
from tests.support.repository import PASSPHRASE, random_bytes, small_repository, tree_state, write_tree

RUN_SECONDS = float(os.environ.get("LIFEBOAT_MANY_WRITERS_SECONDS", "25"))
SHARED = {f"vendor/lib{i}.bin": random_bytes(5000 + i, 120_000) for i in range(8)}  # both apps ship it


def app_content(app: str, round_: int) -> dict[str, bytes]:
    seed = sum(map(ord, app)) * 1000 + round_
    return {
        **SHARED,
        "data/state.bin": random_bytes(seed, 200_000),
        f"uploads/{round_}.jpg": random_bytes(seed + 1, 90_000),
    }


def lifeboat(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIFEBOAT_PASSPHRASE": PASSPHRASE.decode()}
    return subprocess.run([LIFEBOAT, *args], env=env, capture_output=True, text=True, timeout=300)


def test_concurrent_writers_and_prune_keep_every_committed_snapshot_restorable(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    small_repository(LocalStorage(repo), pack_size=256 * 1024)
    expected: dict[str, dict[str, bytes]] = {}  # snapshot id -> the files it must restore
    errors: list[str] = []
    stop = time.monotonic() + RUN_SECONDS
    lock = threading.Lock()

    def writer(app: str) -> None:
        round_ = 0
        while time.monotonic() < stop:
            source = tmp_path / app / f"r{round_}"
            content = app_content(app, round_)
            write_tree(source, content)
            done = lifeboat(
                "repo",
                "--repo",
                str(repo),
                "--lock-wait",
                "60",
                "backup",
                str(source),
                "--tag",
                f"app={app}",
                "-o",
                "json",
            )
            if done.returncode != 0:
                errors.append(f"{app} backup: {done.stderr}")
                return
            with lock:
                expected[json.loads(done.stdout)["id"]] = content
                counts["backups"] += 1
            round_ += 1
            time.sleep(0.3)  # leave the exclusive lock a chance between backups

    counts = {"backups": 0, "forgotten": 0, "prunes": 0}

    def pruner() -> None:
        while time.monotonic() < stop:
            time.sleep(2)
            with lock:
                oldest = sorted(expected)[:2] if len(expected) > 4 else []
            if oldest:
                done = lifeboat("repo", "--repo", str(repo), "--lock-wait", "60", "forget", *oldest)
                if done.returncode != 0:
                    errors.append(f"forget: {done.stderr}")
                    return
                with lock:
                    for snapshot_id in oldest:
                        expected.pop(snapshot_id)
                    counts["forgotten"] += len(oldest)
            done = lifeboat("repo", "--repo", str(repo), "--lock-wait", "60", "prune", "--grace-minutes", "0")
            if done.returncode != 0:
                errors.append(f"prune: {done.stderr}")
                return
            counts["prunes"] += 1

    threads = [threading.Thread(target=writer, args=(app,)) for app in ("wordpress001", "gitea002")]
    threads.append(threading.Thread(target=pruner))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(expected) >= 4
    repository = Repository.open(LocalStorage(repo), PASSPHRASE)
    assert {e.id for e in repository.snapshots()} == set(expected)
    assert Checker(repository).check(read_data_percent=100).ok
    for snapshot_id, content in expected.items():
        target = tmp_path / "restored" / snapshot_id[:12]
        Restorer(repository).restore(repository.load_snapshot(snapshot_id), target)
        reference = tmp_path / "reference" / snapshot_id[:12]
        write_tree(reference, content)
        assert tree_state(target).keys() == tree_state(reference).keys()
        for name, data in content.items():
            assert (target / name).read_bytes() == data
    # The shared files are stored about once for both apps and every round (deduplication
    # across writers; the two first backups may race and both upload them).
    stored = sum(i.size for i in LocalStorage(repo).list("data/"))
    print(f"many writers: {counts} in {RUN_SECONDS:g} s; {len(expected)} snapshots kept, all restored identically")
    assert stored < len(expected) * (200_000 + 90_000) + 2 * sum(map(len, SHARED.values()))
