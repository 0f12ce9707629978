"""examples/gitops as a git checkout: it validates, and a committed policy is picked up by
the controller, whose status lands in sidecar files that git ignores: the checkout stays
clean. The example's own S3 storage runs against SeaweedFS (endpoint and credentials set
as an operator would for a non-AWS store)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from controller.catalog.catalog import Catalog
from controller.errors import DockerUnavailable
from controller.reconciler.reconciler import Reconciler
from controller.reconciler.work_queue import WorkQueue
from controller.resources.loader import load_paths
from tests.support.repository import write_tree
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Endpoint

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gitops"


def git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=ops", "-c", "user.email=ops@example.com", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def no_docker() -> None:
    raise DockerUnavailable("no Docker in this test")


def test_a_committed_policy_gets_status_beside_it_and_git_stays_clean(tmp_path: Path, s3_endpoint: S3Endpoint) -> None:
    assert not load_paths([EXAMPLE]).problems
    checkout = tmp_path / "lifeboat-config"
    shutil.copytree(EXAMPLE, checkout)
    storage = checkout / "storages" / "offsite.yaml"
    bucket = s3_endpoint.new_bucket()
    storage.write_text(
        storage.read_text()
        .replace("bucket: acme-backups", f"bucket: {bucket}")
        .replace("region: eu-central-1", f"region: us-east-1\n    endpoint: {s3_endpoint.url}\n    pathStyle: true")
    )
    git(checkout, "init", "-q")
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "host-eu-1: storage and app policies")

    source = tmp_path / "etc-platform"
    write_tree(source, {"platform.conf": b"tier=prod\n"})
    (checkout / "policies" / "platform-config.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: platform-config}\n"
        f"spec:\n  paths: [{source}]\n  retention: {{keepLast: 5}}\n  storage: offsite\n  statusMode: sidecar\n"
    )
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "back up the platform configuration")
    committed = {p: p.read_bytes() for p in checkout.rglob("*.yaml")}

    environ = {
        "LIFEBOAT_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "LIFEBOAT_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "LIFEBOAT_OFFSITE_PASSPHRASE": "gitops walkthrough passphrase",
    }
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    queue = WorkQueue(2)
    reconciler = Reconciler(checkout, catalog, no_docker, queue, environ=environ)  # type: ignore[arg-type]
    reconciler.pass_once()
    assert queue.wait_idle(60)
    reconciler.pass_once()

    def sidecar(path: Path, kind: str, name: str) -> dict:  # type: ignore[type-arg]
        return yaml.safe_load(Path(f"{path}.status.yaml").read_text())[f"{kind}/{name}"]

    stored = sidecar(storage, "BackupStorage", "offsite")
    assert stored["reachable"] is True and stored["conditions"][0]["status"] == "True"
    platform = sidecar(checkout / "policies" / "platform-config.yaml", "BackupPolicy", "platform-config")
    assert {c["type"]: c["status"] for c in platform["conditions"]}["Ready"] == "True"
    wordpress = sidecar(checkout / "policies" / "wordpress001.yaml", "BackupPolicy", "wordpress001")
    assert wordpress["nextRunAt"]  # scheduled from the committed file
    assert git(checkout, "status", "--porcelain") == ""  # sidecars are ignored; no committed file changed
    assert {p: p.read_bytes() for p in committed} == committed
    queue.shutdown()
    catalog.close()
