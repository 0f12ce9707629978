"""Benchmark: Lifeboat's repository beside restic, same run, same bytes (not a timed test).

    .venv/bin/python tests/benchmarks/bench_repository.py [--size-gb 3] [--work DIR] [--s3]
    .venv/bin/python tests/benchmarks/bench_repository.py --dataset small-files [--files 300000]

Generates a deterministic dataset resembling app volumes (an SQL dump, incompressible
media, thousands of small source files, logs, one large binary with zero runs), or, with
`--dataset small-files`, a mail store's worth of small files (0.1 to 3 KB each, 300 to a
folder; `--files 1000000` for the large run), then for
each tool: first backup, unchanged re-backup, backup after a ~1% "day of activity"
mutation, restore, check --read-data. Prints one table and writes it as JSON. Every
restore is verified against a manifest of the source (size, mode, SHA-256).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Endpoint, seaweedfs_server

MB = 1024 * 1024
GNU_TIME = shutil.which("time", path="/usr/bin:/bin")
PASSWORD = "benchmark-passphrase"
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "post",
    "comment",
    "user",
    "meta",
    "option",
    "value",
    "draft",
    "publish",
    "wordpress",
    "gitea",
    "issue",
    "pull",
    "request",
    "merge",
    "branch",
    "commit",
    "tag",
]


@dataclass
class Measure:
    tool: str
    step: str
    seconds: float
    mb_per_s: float
    peak_rss_mb: float
    repo_mb: float
    added_mb: float


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS in MiB of that process alone).

    Under GNU time when it is installed: Linux keeps a process's RSS high-water mark across
    exec, and a child spawned from this (large) script starts with this script's mark, so
    its own peak below that is unknowable; time's child is forked from time, which is
    small. Without time, posix_spawn and wait4, and the floor is printed. cwd is applied
    with `env -C`. What the steps before wrote is flushed to the disk first, so that no
    step pays for another's writes (the first backup ran while the fresh dataset was
    still being written out).
    """
    os.sync()
    program = shutil.which(command[0]) or command[0]
    argv = ["env", "-C", str(cwd), program, *command[1:]] if cwd else [program, *command[1:]]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-stderr.log"
    peak_file = log.with_name("bench-peak-rss.txt")
    if GNU_TIME:
        argv = [GNU_TIME, "-f", "%M", "-o", str(peak_file), *argv]
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    started = time.monotonic()
    pid = os.posix_spawn(shutil.which(argv[0]) or argv[0], argv, env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{log.read_text()[-2000:]}")
    peak_kib = int(peak_file.read_text().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return seconds, peak_kib / 1024


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# The dataset


def sql_dump(rng: random.Random, size: int) -> bytes:
    lines = [" ".join(rng.choices(_WORDS, k=rng.randint(4, 30))) for _ in range(50_000)]
    rows, total = [], 0
    for row_id, line in enumerate(rng.choices(lines, k=size // 90), start=1):
        row = f"INSERT INTO wp_posts VALUES ({row_id}, '{line}', '2026-11-{row_id % 28 + 1:02d}');\n"
        rows.append(row)
        total += len(row)
        if total >= size:
            break
    return "".join(rows).encode()


def generate(root: Path, size: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    shares = {"dump": 0.2, "media": 0.4, "source": 0.02, "logs": 0.08, "binary": 0.3}
    (root / "db").mkdir(parents=True)
    (root / "db" / "wordpress.sql").write_bytes(sql_dump(rng, int(size * shares["dump"])))
    media = root / "uploads"
    media.mkdir()
    remaining, index = int(size * shares["media"]), 0
    while remaining > 0:
        chunk = min(remaining, rng.randint(MB // 2, 8 * MB))
        (media / f"{2026 - index % 5}").mkdir(exist_ok=True)
        (media / f"{2026 - index % 5}" / f"photo-{index:05d}.jpg").write_bytes(rng.randbytes(chunk))
        remaining -= chunk
        index += 1
    source = root / "app" / "src"
    remaining, index = int(size * shares["source"]), 0
    while remaining > 0:
        folder = source / f"module{index % 97}"
        folder.mkdir(parents=True, exist_ok=True)
        text = "\n".join(
            f"def f{index}_{i}(x):\n    return x * {i}  # {' '.join(rng.choices(_WORDS, k=6))}"
            for i in range(rng.randint(5, 80))
        ).encode()
        (folder / f"file{index}.py").write_bytes(text)
        remaining -= len(text)
        index += 1
    logs = root / "logs"
    logs.mkdir()
    for name in ("access.log", "error.log", "app.log"):
        lines = [
            f"2026-11-2{i % 9} 12:{i % 60:02d}:{i % 60:02d} GET /wp-admin/{rng.choice(_WORDS)} 200 {i}\n"
            for i in range(int(size * shares["logs"] / 3 / 55))
        ]
        (logs / name).write_text("".join(lines))
    with (root / "vm-disk.img").open("wb") as handle:
        remaining = int(size * shares["binary"])
        while remaining > 0:
            piece = min(remaining, MB)
            handle.write(rng.randbytes(piece) if rng.random() < 0.4 else bytes(piece))
            remaining -= piece


def generate_small_files(root: Path, count: int, seed: int = 1) -> None:
    """Maildir-like: `count` files of 0.1 to 3 KB, 300 to a folder, text that compresses."""
    rng = random.Random(seed)
    for index in range(count):
        folder = root / f"user{index // 3000:04d}" / f"cur{index // 300 % 10}"
        if index % 300 == 0:
            folder.mkdir(parents=True)
        words = " ".join(rng.choices(_WORDS, k=rng.randint(15, 450)))
        (folder / f"{1764547200 + index}.M{index}P{seed}.mail").write_bytes(f"Subject: {index}\n\n{words}\n".encode())


def mutate_small_files(root: Path, seed: int = 2) -> None:
    """A day of mail: 1% of the files touched, 0.5% deleted, 1% new."""
    rng = random.Random(seed)
    files = sorted(root.rglob("*.mail"))
    for path in rng.sample(files, len(files) // 100):
        with path.open("ab") as handle:
            handle.write(b"X-Seen: yes\n")
    for path in rng.sample(files, len(files) // 200):
        path.unlink(missing_ok=True)
    new = root / "user-new" / "new"
    new.mkdir(parents=True)
    for index in range(len(files) // 100):
        (new / f"new-{index}.mail").write_bytes(" ".join(rng.choices(_WORDS, k=rng.randint(15, 450))).encode())


def mutate(root: Path, seed: int = 2) -> None:
    """About 1% of a day of app activity."""
    rng = random.Random(seed)
    dump = root / "db" / "wordpress.sql"
    data = dump.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    inserted = sql_dump(rng, len(data) // 200)
    dump.write_bytes(data[:middle] + inserted + data[middle:])
    with (root / "logs" / "access.log").open("ab") as handle:
        handle.write(b"".join(f"2026-11-30 GET /new/{i} 200\n".encode() for i in range(100_000)))
    media = sorted((root / "uploads").rglob("*.jpg"))
    for path in media[: max(1, len(media) // 100)]:
        path.unlink()
    (root / "uploads" / "2026" / "new-upload.jpg").write_bytes(rng.randbytes(int(du(root) * 0.004)))


def manifest(root: Path) -> dict[str, list[object]]:
    result: dict[str, list[object]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(MB):
                    digest.update(block)
            result[path.relative_to(root).as_posix()] = [path.stat().st_size, path.stat().st_mode, digest.hexdigest()]
    return result


def in_subprocess(action: str, *arguments: str) -> str:
    """Data work runs in a child so that this process stays small: a child's peak RSS
    (ru_maxrss) includes its parent's high-water mark at exec."""
    done = subprocess.run(
        [sys.executable, __file__, f"--{action}", *arguments], check=True, capture_output=True, text=True
    )
    return done.stdout


# The tools


class Backend:
    """Where a tool's repository lives: a local directory, or a bucket prefix on S3."""

    def __init__(self, work: Path, s3: S3Endpoint | None) -> None:
        self.work, self.s3 = work, s3
        self.bucket = s3.new_bucket() if s3 else ""

    def env(self) -> dict[str, str]:
        if self.s3 is None:
            return {}
        return {
            "AWS_ENDPOINT_URL": self.s3.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def location(self, tool: str) -> str:
        return f"s3://{self.bucket}/{tool}" if self.s3 else str(self.work / f"repo-{tool}")

    def repo_bytes(self, tool: str) -> int:
        if self.s3 is None:
            return du(self.work / f"repo-{tool}")
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{tool}/")
        return sum(item["Size"] for page in pages for item in page.get("Contents", []))


class Tool:
    name = ""

    def __init__(self, work: Path, backend: Backend) -> None:
        self.backend = backend
        self.env = {**os.environ, **backend.env(), "XDG_CACHE_HOME": str(work / f"cache-{self.name}")}

    def repo_bytes(self) -> int:
        return self.backend.repo_bytes(self.name)

    def init(self) -> list[str]: ...
    def backup(self, source: Path) -> list[str]: ...
    def restore(self, target: Path) -> list[str]: ...
    def check(self) -> list[str]: ...


class Lifeboat(Tool):
    name = "lifeboat"

    def __init__(self, work: Path, backend: Backend) -> None:
        super().__init__(work, backend)
        self.env["LIFEBOAT_PASSPHRASE"] = PASSWORD
        self.cli = [str(Path(sys.executable).parent / "lifeboat"), "repo", "--repo", backend.location(self.name)]

    def init(self) -> list[str]:
        return [*self.cli, "init"]

    def backup(self, source: Path) -> list[str]:
        return [*self.cli, "backup", str(source)]

    def restore(self, target: Path) -> list[str]:
        return [*self.cli, "restore", "latest", "--target", str(target)]

    def check(self) -> list[str]:
        return [*self.cli, "check", "--read-data"]


class Restic(Tool):
    name = "restic"

    def __init__(self, work: Path, backend: Backend) -> None:
        super().__init__(work, backend)
        location = backend.location(self.name)
        if location.startswith("s3://"):
            assert backend.s3 is not None
            location = f"s3:{backend.s3.url}/{location.removeprefix('s3://')}"
        self.env.update(RESTIC_PASSWORD=PASSWORD, RESTIC_REPOSITORY=location)

    def init(self) -> list[str]:
        return ["restic", "init"]

    def backup(self, source: Path) -> list[str]:
        return ["restic", "backup", "--quiet", "."]

    def restore(self, target: Path) -> list[str]:
        return ["restic", "restore", "latest", "--target", str(target)]

    def check(self) -> list[str]:
        return ["restic", "check", "--read-data"]


def ensure_restic() -> None:
    if shutil.which("restic"):
        return
    print("installing restic (Debian package)...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "restic"], check=True, stdout=subprocess.DEVNULL)


def measure_tool(tool: Tool, source: Path, size: int) -> list[Measure]:
    results = []

    def step(name: str, command: list[str], data_bytes: int, cwd: Path | None = None) -> None:
        before = tool.repo_bytes()
        seconds, rss = run(command, tool.env, cwd)
        after = tool.repo_bytes()
        results.append(
            Measure(
                tool.name,
                name,
                round(seconds, 2),
                round(data_bytes / MB / seconds, 1),
                round(rss, 1),
                round(after / MB, 1),
                round((after - before) / MB, 1),
            )
        )
        print(f"  {tool.name:9} {name:18} {seconds:7.2f}s  rss {rss:6.0f} MiB", file=sys.stderr)

    run(tool.init(), tool.env)
    step("first backup", tool.backup(source), size, cwd=source)
    step("unchanged backup", tool.backup(source), size, cwd=source)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=3.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lifeboat-bench"))
    parser.add_argument("--json", type=Path, default=Path("benchmark-results.json"))
    parser.add_argument("--tools", default="lifeboat,restic")
    parser.add_argument("--s3", action="store_true", help="Repositories on a local SeaweedFS S3 endpoint.")
    parser.add_argument("--dataset", choices=["app", "small-files"], default="app")
    parser.add_argument("--files", type=int, default=300_000, help="Files of the small-files dataset.")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mutate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = int(args.size_gb * 1024 * MB)
    if args.generate:
        if args.dataset == "small-files":
            generate_small_files(args.generate, args.files)
        else:
            generate(args.generate, size)
        return
    if args.mutate:
        (mutate_small_files if args.dataset == "small-files" else mutate)(args.mutate)
        return
    if args.manifest:
        print(json.dumps(manifest(args.manifest)))
        return
    tools = args.tools.split(",")
    if "restic" in tools:
        ensure_restic()
    shutil.rmtree(args.work, ignore_errors=True)
    source = args.work / "source"
    shape = ["--dataset", args.dataset, "--files", str(args.files), "--size-gb", str(args.size_gb)]
    print(f"generating the {args.dataset} dataset in {source} ...", file=sys.stderr)
    in_subprocess("generate", str(source), *shape)
    size = du(source)
    classes = {"lifeboat": Lifeboat, "restic": Restic}
    speeds = [disk_write_speed(args.work)]  # this VM's disk varies: measured before and after the runs
    with contextlib.ExitStack() as services:
        s3 = services.enter_context(seaweedfs_server()) if args.s3 else None
        backend = Backend(args.work, s3)
        instances = [classes[name](args.work, backend) for name in tools]
        results = measure_all(instances, source, size, args.work, shape)
    dataset = f"{args.files} small files" if args.dataset == "small-files" else "app"
    report(results, size, args.json, f"{'s3' if args.s3 else 'local'}, dataset {dataset}")
    speeds.append(disk_write_speed(args.work))
    if not args.s3:
        print_write_floor(results, sorted(speeds))


def print_write_floor(results: list[Measure], speeds: list[float]) -> None:
    """A local first backup must write what it stores: that, at the disk's speed, is its floor."""
    low, high = speeds[0], speeds[-1]
    print(f"this disk writes {low:.0f} to {high:.0f} MB/s (1 GiB in fsynced 16 MiB files; before and after the runs)")
    first = {m.tool: m for m in results if m.step == "first backup"}
    restic = first.get("restic")
    for m in first.values():
        versus = f", {m.seconds / restic.seconds:.2f}x restic" if restic and m is not restic else ""
        print(
            f"  {m.tool} first backup: {m.seconds:.2f} s{versus}; writing its {m.added_mb:.0f} MiB at that speed"
            f" takes {m.added_mb / high:.2f} to {m.added_mb / low:.2f} s"
        )


def disk_write_speed(work: Path, total: int = 1024 * MB, file_size: int = 16 * MB) -> float:
    """MB/s of writing incompressible data to the work folder's disk as both tools store
    it: in files of a pack's size, each fsynced."""
    block = random.Random(3).randbytes(file_size)
    folder = work / "write-speed"
    folder.mkdir(exist_ok=True)
    started = time.monotonic()
    for number in range(total // file_size):
        fd = os.open(folder / str(number), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
    seconds = time.monotonic() - started
    shutil.rmtree(folder)
    return total / MB / seconds


def measure_all(instances: list[Tool], source: Path, size: int, work: Path, shape: list[str]) -> list[Measure]:
    results: list[Measure] = []
    for tool in instances:
        results += measure_tool(tool, source, size)
    print("mutating ~1% ...", file=sys.stderr)
    in_subprocess("mutate", str(source), *shape)
    after_mutation = in_subprocess("manifest", str(source))
    mutated_size = du(source)
    for tool in instances:
        before = tool.repo_bytes()
        seconds, rss = run(tool.backup(source), tool.env, source)
        after = tool.repo_bytes()
        results.append(
            Measure(
                tool.name,
                "mutated backup",
                round(seconds, 2),
                round(mutated_size / MB / seconds, 1),
                round(rss, 1),
                round(after / MB, 1),
                round((after - before) / MB, 1),
            )
        )
        target = work / f"restore-{tool.name}"
        seconds, rss = run(tool.restore(target), tool.env)
        results.append(
            Measure(
                tool.name,
                "restore",
                round(seconds, 2),
                round(mutated_size / MB / seconds, 1),
                round(rss, 1),
                round(tool.repo_bytes() / MB, 1),
                0.0,
            )
        )
        restored = in_subprocess("manifest", str(target))
        if restored != after_mutation:
            expected, got = json.loads(after_mutation), json.loads(restored)
            differ = [k for k in set(expected) | set(got) if expected.get(k) != got.get(k)]
            raise SystemExit(f"{tool.name}: restore differs from the source in {len(differ)} files: {differ[:5]}")
        shutil.rmtree(target)
        seconds, rss = run(tool.check(), tool.env)
        results.append(
            Measure(
                tool.name,
                "check --read-data",
                round(seconds, 2),
                round(tool.repo_bytes() / MB / seconds, 1),
                round(rss, 1),
                round(tool.repo_bytes() / MB, 1),
                0.0,
            )
        )
    return results


def report(results: list[Measure], size: int, out: Path, where: str) -> None:
    header = f"{'tool':9} {'step':18} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'repo MiB':>9} {'added MiB':>10}"
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = "each process's own (GNU time)" if GNU_TIME else f"floor inherited from this script: {own:.0f} MiB"
    print(f"\ndataset: {size / MB:.0f} MiB; repositories: {where}; RSS {floor}")
    print(header)
    for m in sorted(results, key=lambda r: (r.step, r.tool)):
        print(
            f"{m.tool:9} {m.step:18} {m.seconds:8.2f} {m.mb_per_s:8.1f} {m.peak_rss_mb:13.1f} {m.repo_mb:9.1f} "
            f"{m.added_mb:10.1f}"
        )
    out.write_text(
        json.dumps(
            {"dataset_mb": round(size / MB, 1), "repositories": where, "results": [asdict(m) for m in results]},
            indent=2,
        )
    )
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
