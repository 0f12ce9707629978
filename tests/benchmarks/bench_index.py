"""Benchmark: a big repository's index and snapshots (not a timed test).

    .venv/bin/python tests/benchmarks/bench_index.py [--blobs 10000000] [--files 1000] [--snapshots 5000]

Writes `--blobs` synthetic entries (random ids, 2,000 to a pack) as `--files` index files
and `--snapshots` snapshots (50 apps) into a local repository. Then:
- in a fresh process, the resident memory the loaded index adds per blob (the target is
  at most 64 bytes), the load time, and the cost of a lookup of a present and an absent id;
- the requests a backup job makes before it reads a file (open the repository, find its
  parent snapshot, load the index), counted by kind, with a cold and then a warm local
  cache (`object_cache.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from controller.repository.blobs import BlobType
from controller.repository.crypto import content_hash
from controller.repository.index import BlobLocation, encode_index
from controller.repository.records import Snapshot
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.support.storage_wrappers import CountingStorage

PASSPHRASE = b"benchmark-passphrase"
BLOBS_PER_PACK = 2000


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_index_files(root: Path, blobs: int, files: int) -> list[bytes]:
    """The repository with its index files; returns a sample of the ids written."""
    repository = Repository.init(LocalStorage(root), PASSPHRASE, datetime.now(UTC), "bench", "bench")
    rng, sample = random.Random(1), []
    per_file = -(-blobs // files)
    for start in range(0, blobs, per_file):
        entries = []
        for number in range(start, min(start + per_file, blobs)):
            if number % BLOBS_PER_PACK == 0:
                pack = rng.randbytes(32)
            blob_id = rng.randbytes(32)
            entries.append((blob_id, BlobLocation(BlobType.DATA, pack, number % BLOBS_PER_PACK * 4096, 4000, 8000)))
        sample.append(entries[0][0])
        stored = encode_index(repository.master, entries)
        repository.storage.save(f"index/{content_hash(stored)}", stored)
    return sample


def write_snapshots(root: Path, count: int) -> None:
    repository = Repository.open(LocalStorage(root), PASSPHRASE)
    for number in range(count):
        tags = {"app": f"app-{number % 50}", "policy": f"app-{number % 50}-daily", "type": "scheduled"}
        when = datetime.fromtimestamp(1_700_000_000 + number * 3600, UTC).isoformat()
        repository.save_snapshot(Snapshot(when, "00" * 32, "bench", tags, ["volumes"]))


def count_requests(root: Path) -> tuple[dict[str, int], float]:
    """What a backup job asks the storage before it reads a file; (requests by kind, seconds)."""
    counted = CountingStorage(LocalStorage(root))
    started = time.perf_counter()
    repository = Repository.open(counted, PASSPHRASE)
    assert repository.latest_snapshot({"app": "app-7", "policy": "app-7-daily"}) is not None
    repository.load_index()
    seconds = time.perf_counter() - started
    kinds = {operation: count for operation, count in counted.requests.items() if operation != "load"}
    for key in counted.loaded:
        kind = f"load {key.split('/', 1)[0]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds, seconds


def measure_load(root: str, sample_hex: str) -> None:
    """In a fresh process: load, then look up; print one JSON line."""
    repository = Repository.open(LocalStorage(Path(root)), PASSPHRASE)
    before, started = resident_bytes(), time.perf_counter()
    index = repository.load_index()
    load_seconds, added = time.perf_counter() - started, resident_bytes() - before
    sample = [bytes.fromhex(h) for h in sample_hex.split(",")]
    absent = [random.Random(2).randbytes(32) for _ in sample]
    rounds = max(1, 200_000 // len(sample))
    started = time.perf_counter()
    found = sum(blob_id in index for _ in range(rounds) for blob_id in sample)
    hit = (time.perf_counter() - started) / (rounds * len(sample))
    started = time.perf_counter()
    found_absent = sum(blob_id in index for _ in range(rounds) for blob_id in absent)
    miss = (time.perf_counter() - started) / (rounds * len(sample))
    assert found == rounds * len(sample) and found_absent == 0
    print(
        json.dumps(
            {"blobs": len(index), "load_s": load_seconds, "bytes": added, "hit_us": hit * 1e6, "miss_us": miss * 1e6}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=5000)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        measure_load(*arguments.measure)
        return
    with tempfile.TemporaryDirectory(prefix="lifeboat-bench-index-") as work:
        os.environ["LIFEBOAT_CACHE_DIR"] = str(Path(work) / "cache")
        started = time.perf_counter()
        sample = write_index_files(Path(work), arguments.blobs, arguments.files)
        seconds = time.perf_counter() - started
        print(f"wrote {arguments.blobs:,} entries in {arguments.files} index files ({seconds:.0f} s)")
        output = subprocess.run(
            [sys.executable, __file__, "--measure", work, ",".join(s.hex() for s in sample)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        write_snapshots(Path(work), arguments.snapshots)
        shutil.rmtree(Path(work) / "cache", ignore_errors=True)  # the measuring process filled it
        cold, cold_seconds = count_requests(Path(work))
        warm, warm_seconds = count_requests(Path(work))
    figures = json.loads(output)
    print(f"{'blobs':>12} {'load':>8} {'memory':>10} {'per blob':>9} {'hit':>8} {'miss':>8}")
    print(
        f"{figures['blobs']:>12,} {figures['load_s']:>7.1f}s {figures['bytes'] / 2**20:>7.0f}MiB"
        f" {figures['bytes'] / figures['blobs']:>8.1f}B {figures['hit_us']:>6.2f}us {figures['miss_us']:>6.2f}us"
    )

    print(f"\nrequests before a backup reads a file ({arguments.snapshots} snapshots, {arguments.files} index files):")
    for label, kinds, seconds in (("cold cache", cold, cold_seconds), ("warm cache", warm, warm_seconds)):
        detail = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        print(f"  {label}: {sum(kinds.values())} requests in {seconds:.1f} s ({detail})")


if __name__ == "__main__":
    main()
