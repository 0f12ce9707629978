"""A restore checks itself before it says Succeeded: every restored path is compared with the
snapshot while the app is still stopped. Here a container outside the app (so not stopped by
the restore) keeps rewriting a file of the shared volume while the backup's marker file is
there, as a stray job would: the check finds it, the restore rolls back to the safety
backup and names the difference, and the app runs on the state it had before."""

from __future__ import annotations

import secrets
import time

from docker import DockerClient

from controller.catalog.catalog import Catalog
from controller.host import host_name
from controller.reconciler.backup_run import BackupRequest
from controller.reconciler.restore_run import RestoreRequest
from controller.repository.repository import Repository
from controller.resources.restore import RestorePhase
from tests.support.docker_apps import BUSYBOX, IDLE, TEST_LABEL, TestApp
from tests.support.runs import back_up, restore

SPOILER = "touch /ready; while true; do if [ -e /data/restored-marker ]; then echo spoiled > /data/readme.txt; fi; done"


def app_with_uploads(client: DockerClient, made_apps: list[TestApp]) -> TestApp:
    app = TestApp(client, f"chk{secrets.token_hex(3)}")
    made_apps.append(app)
    app.run("web", BUSYBOX, IDLE, volumes={app.volume("uploads"): {"bind": "/srv/uploads", "mode": "rw"}})
    return app


def test_data_spoiled_after_the_write_rolls_the_restore_back_naming_the_file(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = app_with_uploads(docker_client, made_apps)
    # The marker is empty, so the restore makes it before any content; readme.txt's blob
    # comes first in its pack, and 30 MB follow it: the stray job has that long to spoil
    # it after it is written and before the check reads it, even on a loaded machine.
    app.exec(
        "web",
        [
            "sh",
            "-c",
            "echo original > /srv/uploads/readme.txt; touch /srv/uploads/restored-marker;"
            " head -c 31457280 /dev/urandom > /srv/uploads/zz-large.bin",
        ],
    )
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="test"), docker_client).backup_id
    app.exec(
        "web",
        [
            "sh",
            "-c",
            "echo damaged > /srv/uploads/readme.txt; rm /srv/uploads/restored-marker /srv/uploads/zz-large.bin",
        ],
    )
    spoiler = docker_client.containers.run(
        BUSYBOX,
        ["sh", "-c", SPOILER],
        name=f"{app.name}-stray-job",
        labels={TEST_LABEL: "1"},  # not the app's: the restore does not stop it
        volumes={f"{app.name}_uploads": {"bind": "/data", "mode": "rw"}},
        detach=True,
    )
    while spoiler.exec_run(["test", "-e", "/ready"]).exit_code != 0:  # its loop has begun
        time.sleep(0.05)
    try:
        run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)
    finally:
        spoiler.remove(force=True)

    assert run.phase == RestorePhase.ROLLED_BACK.value, run.message
    assert run.message.startswith("volumes/uploads differs from the backup after the restore wrote it: ")
    assert "readme.txt (" in run.message and f"the app runs on safety backup {run.safety_backup_id}" in run.message
    assert app.exec("web", ["cat", "/srv/uploads/readme.txt"]) == "damaged\n"  # the state before the restore
    assert app.exec("web", ["ls", "/srv/uploads"]).split() == ["readme.txt"]
    assert app.state("web") == "running"
    told = [n for n in catalog.notices_after(host_name(), 0) if n.event.startswith("Restore")]  # for the Notifiers
    assert [(n.event, n.state, n.object_id, n.app) for n in told] == [("RestoreRolledBack", "firing", run.id, app.name)]
    assert told[0].message.startswith(f"restore {run.id}: volumes/uploads differs from the backup")


def test_a_good_restore_says_what_it_verified(
    docker_client: DockerClient, catalog: Catalog, repository: Repository, made_apps: list[TestApp]
) -> None:
    app = app_with_uploads(docker_client, made_apps)
    app.exec("web", ["sh", "-c", "for i in 1 2 3; do echo $i > /srv/uploads/$i.txt; done"])
    backup_id = back_up(catalog, repository, BackupRequest(app=app.name, storage="test"), docker_client).backup_id
    app.exec("web", ["sh", "-c", "rm /srv/uploads/2.txt"])

    run = restore(catalog, repository, RestoreRequest(backup_id), docker_client)

    assert run.phase == RestorePhase.SUCCEEDED.value, run.message
    assert "verified 3 files (6 bytes) in 1 volume(s) and mount(s)" in run.message
    assert app.exec("web", ["cat", "/srv/uploads/2.txt"]) == "2\n"
