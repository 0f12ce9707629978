"""Benchmark: a large download through the REST API uses bounded memory (not a timed test).

    .venv/bin/python tests/benchmarks/bench_download.py [--size-gb 10] [--work DIR]

Backs up one file of SIZE GB (random 1 MiB blocks repeating every 64 MiB, so the
repository stays small while the download is the full size), serves the API on loopback,
downloads the tar with httpx while discarding it, and prints the bytes received, the
throughput and the process's peak RSS before and after (server and client share it)."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from controller.reconciler.backup_run import BackupRequest
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.support.api_stack import PASSPHRASE, start_stack
from tests.support.repository import random_bytes
from tests.support.runs import back_up

MIB = 1024 * 1024


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_source(path: Path, size: int) -> None:
    blocks = [random_bytes(seed, MIB) for seed in range(64)]
    with path.open("wb") as handle:
        for index in range(size // MIB):
            handle.write(blocks[index % 64])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gb", type=float, default=10.0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as folder:
        work = Path(folder)
        source = work / "source"
        source.mkdir()
        size = int(args.size_gb * 1024) * MIB
        write_source(source / "big.bin", size)
        stack = start_stack(work, lambda: None)  # type: ignore[arg-type,return-value]  # no app: no Docker
        repository = Repository.init(
            LocalStorage(work / "repo"), PASSPHRASE.encode(), stack.reconciler.clock(), "bench", "bench"
        )
        started = time.monotonic()
        row = back_up(
            stack.catalog, repository, BackupRequest(app=None, storage="local", policy="bench", paths=[str(source)])
        )
        backed_up = time.monotonic() - started
        before = peak_rss_mib()
        received = 0
        started = time.monotonic()
        with stack.client() as client, client.stream("GET", f"/api/v1/backups/download/{row.backup_id}") as answer:
            declared = int(answer.headers["content-length"])
            for chunk in answer.iter_bytes(1024 * 1024):
                received += len(chunk)
        took = time.monotonic() - started
        after = peak_rss_mib()
        stack.close()
    print(f"source                 {size / MIB:,.0f} MiB (backed up in {backed_up:.1f} s)")
    print(f"download               {received / MIB:,.0f} MiB of {declared / MIB:,.0f} MiB declared")
    print(f"throughput             {received / MIB / took:,.0f} MiB/s ({took:.1f} s)")
    print(f"peak RSS before        {before:,.0f} MiB")
    print(f"peak RSS after         {after:,.0f} MiB (growth {after - before:,.0f} MiB)")


if __name__ == "__main__":
    main()
