"""SIGKILL a backup or a prune at random points: the repository stays consistent."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from controller.repository.checker import Checker
from controller.repository.repository import Repository
from controller.repository.restorer import Restorer
from controller.storage.local import LocalStorage
from tests.e2e.conftest import LIFEBOAT
from tests.support.repository import PASSPHRASE, backup, random_bytes, small_repository, tree_state, write_tree

RNG = random.Random(20261123)


def env() -> dict[str, str]:
    return {**os.environ, "LIFEBOAT_PASSPHRASE": PASSPHRASE.decode()}


def run_and_kill(args: list[str], delay: float) -> int | None:
    """Start the command, SIGKILL it after `delay` seconds; its exit code if it finished first."""
    process = subprocess.Popen([LIFEBOAT, *args], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode if process.returncode != -signal.SIGKILL else None


def run_until_then_kill(args: list[str], reached: Callable[[], bool], timeout: float = 120) -> bool:
    """Start the command, SIGKILL it as soon as `reached()` holds; False if it finished or timed out first."""
    process = subprocess.Popen([LIFEBOAT, *args], env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if reached():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.kill()
    process.wait()
    return False


def assert_consistent(repo: Path, expected: dict[str, dict[str, tuple[object, ...]]], out: Path) -> None:
    repository = Repository.open(LocalStorage(repo), PASSPHRASE)
    report = Checker(repository).check(read_data_percent=100)
    assert report.ok, [d.describe() for d in report.damage]
    for snapshot_id, state in expected.items():
        target = out / snapshot_id[:8]
        Restorer(repository).restore(repository.load_snapshot(snapshot_id), target)
        assert tree_state(target) == state


def make_source(root: Path, seed: int) -> None:
    write_tree(
        root, {f"d{i}/f{j}.bin": random_bytes(seed * 1000 + i * 10 + j, 400_000) for i in range(6) for j in range(10)}
    )


def timed(args: list[str]) -> float:
    started = time.monotonic()
    subprocess.run([LIFEBOAT, *args], env=env(), check=True, capture_output=True)
    return time.monotonic() - started


def test_backup_killed_at_random_points_leaves_a_valid_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    small_repository(LocalStorage(repo), pack_size=256 * 1024)
    source = tmp_path / "src"
    make_source(source, 0)
    command = ["repo", "--repo", str(repo), "backup", "--type", "full", str(source)]
    subprocess.run([LIFEBOAT, *command], env=env(), check=True, capture_output=True)
    (first,) = Repository.open(LocalStorage(repo), PASSPHRASE).snapshots()
    expected = {first.id: tree_state(source)}
    packs_per_backup = len(list(LocalStorage(repo).list("data/")))
    for attempt in range(4):
        make_source(source, attempt + 1)  # new content, so the killed backup has work to do
        packs_before = len(list(LocalStorage(repo).list("data/")))
        kill_after = packs_before + int(packs_per_backup * RNG.uniform(0.05, 0.95))

        def reached(kill_after: int = kill_after) -> bool:
            return len(list(LocalStorage(repo).list("data/"))) >= kill_after

        assert run_until_then_kill(command, reached), "the kill must land mid-backup"
        assert_consistent(repo, expected, tmp_path / f"out{attempt}")
    result = subprocess.run(
        [LIFEBOAT, "repo", "--repo", str(repo), "backup", str(source), "-o", "json"],
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"problems": []' in result.stdout


def test_prune_killed_at_random_points_leaves_a_valid_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repository = small_repository(LocalStorage(repo), pack_size=128 * 1024)
    source = tmp_path / "src"
    kept: dict[str, dict[str, tuple[object, ...]]] = {}
    forgotten = []
    for round_ in range(6):
        make_source(source, round_)
        result = backup(repository, source)
        if round_ % 2:
            kept[result.id] = tree_state(source)
        else:
            forgotten.append(result.id)
    for snapshot_id in forgotten:
        repository.forget(snapshot_id)
    command = ["repo", "--repo", str(repo), "prune", "--grace-minutes", "0"]
    duration = timed([*command, "--dry-run"])  # marks and plans: most of a prune's time
    packs_at_start = {info.key for info in LocalStorage(repo).list("data/")}

    def prune_has_begun_rewriting() -> bool:
        return {info.key for info in LocalStorage(repo).list("data/")} != packs_at_start

    assert run_until_then_kill(command, prune_has_begun_rewriting), "the first kill must land mid-prune"
    for attempt in range(4):
        if attempt:  # later kills at random times, which may also find the prune finished
            assert run_and_kill(command, duration * RNG.uniform(0.5, 1.3)) in (None, 0)
        assert_consistent(repo, kept, tmp_path / f"out{attempt}")
        if list(LocalStorage(repo).list("locks/")):
            # The killed prune's exclusive lock stays until it is stale; the process is
            # known to be dead, so remove it as an operator would.
            blocked = subprocess.run([LIFEBOAT, *command], env=env(), capture_output=True, text=True)
            assert blocked.returncode == 1 and "is locked: exclusive lock by prune" in blocked.stderr
            subprocess.run(
                [LIFEBOAT, "repo", "--repo", str(repo), "unlock", "--force"], env=env(), check=True, capture_output=True
            )
    subprocess.run([LIFEBOAT, *command], env=env(), check=True, capture_output=True)
    assert_consistent(repo, kept, tmp_path / "final")


def test_a_killed_backup_resumes_without_uploading_again(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    pack_size = 256 * 1024
    small_repository(LocalStorage(repo), pack_size=pack_size)
    source = tmp_path / "src"
    make_source(source, 7)
    total = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    command = ["repo", "--repo", str(repo), "backup", str(source), "-o", "json"]
    # A checkpoint index is written every 8 packs; kill once checkpoints cover over half the source.
    checkpoints_needed = math.ceil(total * 0.55 / (8 * pack_size))

    def half_checkpointed() -> bool:
        return len(list(LocalStorage(repo).list("index/"))) >= checkpoints_needed

    assert run_until_then_kill(command, half_checkpointed), "the kill must land mid-backup"
    stored_by_killed_run = sum(i.size for i in LocalStorage(repo).list("data/"))
    resumed = subprocess.run([LIFEBOAT, *command], env=env(), capture_output=True, text=True, check=True)
    added = json.loads(resumed.stdout)["summary"]["bytes_added"]
    assert added < total * 0.5, f"resumed run added {added} of {total} bytes"
    assert stored_by_killed_run > total * 0.5
    assert_consistent(repo, {json.loads(resumed.stdout)["id"]: tree_state(source)}, tmp_path / "out")
