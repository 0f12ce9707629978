"""Restore drills on the real engine with an app made by docker-compose: a good backup's
drill passes its checks in a throwaway clone and leaves nothing; a damaged repository's
drill fails, naming the damage; a drill killed midway is cleaned up by the next start.
The source app keeps its containers and data throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.host import host_name
from tests.e2e.conftest import LIFEBOAT, Lifeboat
from tests.support.compose_apps import ComposeApp, blog_project, free_port
from tests.support.docker_apps import BUSYBOX

PASSPHRASE = "drill passphrase"
CHECKS = """\
    checks:
      - sql: {service: db, database: wordpress, query: "SELECT COUNT(*) FROM posts", expect: "2"}
      - http: {service: web, port: 80, path: /uploads/photo.jpg}
      - file: {service: web, path: /var/www/uploads/photo.jpg}
      - command: {service: web, command: [test, -s, /etc/site/site.conf]}
"""


def clone_leftovers(client: DockerClient) -> list[str]:
    """Anything a drill's clone could leave: containers, volumes, networks."""
    found = [c.name for c in client.containers.list(all=True) if c.name.startswith("lbdrill-")]
    found += [v.name for v in client.volumes.list() if v.name.startswith("lbdrill-")]
    found += [n.name for n in client.networks.list() if n.name.startswith("lbdrill-")]
    return found


@pytest.fixture
def blog(tmp_path: Path, docker_client: DockerClient) -> Iterator[ComposeApp]:
    """The blog with a web server (busybox httpd) serving /var/www, two posts and a photo."""
    app = blog_project(docker_client, tmp_path / "blog", BUSYBOX, free_port(), serve_http=True)
    app.sql("CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1), (2);")
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    yield app
    app.remove()


@pytest.fixture
def host(lifeboat: Lifeboat, blog: ComposeApp, monkeypatch: pytest.MonkeyPatch) -> Lifeboat:
    lifeboat.resources.mkdir(parents=True)
    (lifeboat.resources / "storage.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupStorage\nmetadata: {name: local}\n"
        f"spec:\n  local: {{path: {lifeboat.home / 'repo'}}}\n  encryption: {{passphrase: {{env: DRILL_PASS}}}}\n"
    )
    (lifeboat.resources / "policy.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: blog}\n"
        f"spec:\n  app: {blog.name}\n  storage: local\n  retention: {{keepLast: 5}}\n  verify:\n{CHECKS}"
    )
    monkeypatch.setenv("DRILL_PASS", PASSPHRASE)
    assert lifeboat("repo", "--storage", "local", "init").code == 0
    made = lifeboat("backup", "--policy", "blog", "-o", "json")
    assert made.code == 0, made.err
    return lifeboat


def source_state(app: ComposeApp) -> tuple[object, ...]:
    return (
        app.container("web").id,
        app.container("db").id,
        app.sql("SELECT COUNT(*) FROM posts"),
        (app.mountpoint("uploads") / "photo.jpg").read_bytes(),
    )


def test_a_good_backups_drill_passes_and_a_damaged_ones_fails_each_leaving_nothing(
    host: Lifeboat, blog: ComposeApp, docker_client: DockerClient
) -> None:
    before = source_state(blog)
    drilled = host("drill", "blog", "-o", "json")
    assert drilled.code == 0, drilled.out + drilled.err
    drill = json.loads(drilled.out)
    passed_id = drill["id"]
    assert drill["result"] == "Passed" and drill["duration_seconds"] > 0
    assert [c["passed"] for c in drill["checks"]] == [True, True, True, True]
    assert drill["checks"][0]["detail"] == "returned '2', expected '2'"
    assert clone_leftovers(docker_client) == [] and not Path(drill["folder"]).exists()
    assert source_state(blog) == before  # the source app was never touched

    # The controller writes the outcome into the policy's status: Verified, lastDrill, VERIFIED.
    assert host("controller", "--once").code == 0
    status = yaml.safe_load((host.resources / "policy.yaml").read_text())["status"]
    verified = next(c for c in status["conditions"] if c["type"] == "Verified")
    assert (verified["status"], verified["reason"]) == ("True", "DrillPassed")
    assert status["lastDrill"]["result"] == "Passed" and status["lastDrill"]["durationSeconds"] > 0
    listed = host("get", "policies").out.splitlines()
    assert listed[0].split()[-1] == "VERIFIED" and listed[1].split()[-1].startswith("(")  # "True (12.3s)"

    # A byte flipped in every pack: the drill fails, naming the damage.
    for pack in (host.home / "repo" / "data").rglob("*"):
        if pack.is_file():
            pack.chmod(0o644)
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0x01
            pack.write_bytes(bytes(data))
    drilled = host("drill", "blog", "-o", "json")
    assert drilled.code == 1, drilled.out + drilled.err
    drill = json.loads(drilled.out)
    assert drill["result"] == "Failed" and "the restore did not succeed" in drill["message"]
    assert "Traceback" not in drilled.err
    assert clone_leftovers(docker_client) == []
    assert source_state(blog) == before
    assert host("controller", "--once").code == 0
    status = yaml.safe_load((host.resources / "policy.yaml").read_text())["status"]
    verified = next(c for c in status["conditions"] if c["type"] == "Verified")
    assert (verified["status"], verified["reason"]) == ("False", "DrillFailed")
    assert (
        drill["message"] in verified["message"] and "failed authentication" in verified["message"]
    )  # the damage, named
    assert status["lastDrill"]["result"] == "Failed"
    catalog = Catalog(
        f"sqlite:///{host.home / 'catalog.db'}"
    )  # what the Notifiers are told: the drills, not their restores
    told = [(n.event, n.state, n.object_id) for n in catalog.notices_after(host_name(), 0) if "Backup" not in n.event]
    catalog.close()
    assert told == [("DrillSucceeded", "info", passed_id), ("DrillFailed", "firing", drill["id"])]
    assert host("drill", "nobody").code == 2  # could not run: no such policy
    unknown = host("drill", "blog", "--backup", "someone-else-20260101-000000-abcdef")
    assert unknown.code == 2 and "no backup with id" in unknown.err
    etc = host.home / "etc-site"
    etc.mkdir()
    (etc / "site.conf").write_text("x\n")
    (host.resources / "etc.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: etc}\n"
        f"spec:\n  paths: [{etc}]\n  storage: local\n  retention: {{keepLast: 1}}\n"
    )
    of_paths = json.loads(host("backup", "--policy", "etc", "-o", "json").out)["backup"]["backup_id"]
    other = host("drill", "blog", "--backup", of_paths)
    assert other.code == 2 and f"backup {of_paths} is of etc, not of app {blog.name}" in other.err


def test_a_drill_killed_midway_is_cleaned_up_by_the_next_start(
    host: Lifeboat, blog: ComposeApp, docker_client: DockerClient
) -> None:
    # Its own session, killed whole (as a service manager kills a unit): docker-compose too.
    process = subprocess.Popen(
        [LIFEBOAT, "drill", "blog"], env=host.env(), stdout=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not clone_leftovers(docker_client) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the drill ended before its clone appeared"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert clone_leftovers(docker_client)

    assert host("controller", "--once").code == 0
    assert clone_leftovers(docker_client) == []
    catalog = Catalog(host.env()["LIFEBOAT_CATALOG"])
    (killed,) = catalog.drills()
    catalog.close()
    assert killed.result == "Failed" and "interrupted" in killed.message and not Path(killed.folder).exists()
    again = json.loads(host("drill", "blog", "-o", "json").out)  # the next drill runs and passes
    assert again["result"] == "Passed"
