"""The REST API against a running server and the real Docker engine: back up an app, poll,
list, download (whole, a range, zstd) and compare with the app's data, restore, delete;
the metrics then equal the catalog's counts."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from docker import DockerClient
from prometheus_client.parser import text_string_to_metric_families

from controller.apps.docker_api import connect
from controller.catalog.models import BackupStatus
from tests.support.api_stack import ApiStack, poll, start_stack
from tests.support.compose_apps import blog_project, free_port
from tests.support.docker_apps import BUSYBOX, TestApp, mariadb_sql, wordpress_like
from tests.support.repository import random_bytes


@pytest.fixture
def stack(tmp_path: Path, docker_client: DockerClient) -> Iterator[ApiStack]:
    started = start_stack(tmp_path, connect)
    yield started
    started.close()


def members(tar_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_backup_download_restore_delete_and_metrics(
    stack: ApiStack, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    mariadb_sql(app, "CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1), (2), (3);")
    uploads = app.mountpoint("uploads")
    photo = random_bytes(7, 300_000)
    (uploads / "photo.jpg").write_bytes(photo)
    (uploads / "readme.txt").write_text("hello\n")
    client = stack.client()

    # Create (202 + pending record), then poll to completion.
    created = client.post(f"/api/v1/backups/{app.name}", json={"description": "before upgrade"})
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["code"] == 200 and body["data"]["status"] in ("pending", "in_progress")  # the contract's example
    backup_id = body["data"]["backup_id"]
    assert body["data"]["url"] == f"/api/v1/backups/{backup_id}"
    record = poll(client, f"/api/v1/backups/{backup_id}", {"completed", "failed"}, "status")
    assert record["status"] == "completed", record
    assert record["description"] == "before upgrade" and record["encrypted"] and record["policy"] is None
    kinds = {(item["kind"], item["name"]) for item in record["items"]}
    assert ("volume", "volumes/uploads") in kinds and ("dump", "databases/db.sql") in kinds

    # ?wait=true answers 200 with the completed record (the seed's example).
    waited = client.post(f"/api/v1/backups/{app.name}?wait=true", json={"backup_type": "full"})
    assert waited.status_code == 200, waited.text
    assert waited.json()["data"]["status"] == "completed" and waited.json()["data"]["backup_type"] == "full"
    second_id = waited.json()["data"]["backup_id"]

    # List: filtered, paginated, newest first.
    listed = client.get("/api/v1/backups", params={"app_id": app.name, "page_size": 1}).json()["data"]
    assert listed["total"] == 2 and [b["backup_id"] for b in listed["items"]] == [second_id]
    page_two = client.get("/api/v1/backups", params={"app_id": app.name, "page_size": 1, "page": 2}).json()["data"]
    assert [b["backup_id"] for b in page_two["items"]] == [backup_id]
    assert client.get("/api/v1/backups", params={"status": "failed"}).json()["data"]["total"] == 0

    # Download: the tar holds the app's files and its dump; a range is the same bytes.
    whole = client.get(f"/api/v1/backups/download/{backup_id}")
    assert whole.status_code == 200 and whole.headers["content-type"] == "application/x-tar"
    assert int(whole.headers["content-length"]) == len(whole.content)
    files = members(whole.content)
    assert files["volumes/uploads/photo.jpg"] == photo
    assert files["volumes/uploads/readme.txt"] == b"hello\n"
    assert b"INSERT INTO `posts` VALUES" in files["databases/db.sql"]
    start, end = 1000, len(whole.content) // 2
    part = client.get(f"/api/v1/backups/download/{backup_id}", headers={"Range": f"bytes={start}-{end}"})
    assert part.status_code == 206 and part.content == whole.content[start : end + 1]
    assert part.headers["content-range"] == f"bytes {start}-{end}/{len(whole.content)}"
    outside = client.get(f"/api/v1/backups/download/{backup_id}", headers={"Range": "bytes=999999999-"})
    assert outside.status_code == 416 and outside.json()["code"] == "RANGE_NOT_SATISFIABLE"
    packed = client.get(f"/api/v1/backups/download/{backup_id}", params={"compression": "zstd"})
    assert "content-length" not in packed.headers
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed.content) == whole.content

    # Restore: break the app, preview the restore (dry_run: nothing changes), restore, see it back.
    (uploads / "photo.jpg").write_bytes(b"overwritten")
    mariadb_sql(app, "DROP TABLE posts")
    preview = client.post(f"/api/v1/backups/{backup_id}/restore", json={"dry_run": True})
    assert preview.status_code == 200, preview.text
    plan = preview.json()["data"]
    assert plan["would_change"] and plan["target_app"] == app.name
    (uploads_plan,) = [t for t in plan["trees"] if t["path"] == "volumes/uploads"]
    assert [c.split(" ")[0] for c in uploads_plan["change"]] == ["photo.jpg"] and uploads_plan["delete"] == []
    assert plan["dumps"][0]["databases"]["wordpress"] == {"posts": 3}
    assert (uploads / "photo.jpg").read_bytes() == b"overwritten" and not (stack.resources / "restores").exists()
    accepted = client.post(f"/api/v1/backups/{backup_id}/restore", json={"safety_backup": True})
    assert accepted.status_code == 202, accepted.text
    restore_url = accepted.json()["data"]["url"]
    done = poll(client, restore_url, {"Succeeded", "Failed", "RolledBack"}, "phase")
    assert done["phase"] == "Succeeded", done
    assert done["backup_id"] == backup_id and done["safety_backup_id"] and done["elapsed_seconds"] > 0
    assert (uploads / "photo.jpg").read_bytes() == photo
    assert mariadb_sql(app, "SELECT COUNT(*) FROM posts") == "3\n"
    assert app.state("web") == "running" and app.state("db") == "running"
    restore_file = stack.resources / "restores" / f"{accepted.json()['data']['restore_id']}.yaml"
    assert "lifeboat.io/managed-by: api" in restore_file.read_text()

    # Delete: forgotten, then 404; deleting again is 404 too.
    deleted = client.delete(f"/api/v1/backups/{second_id}")
    assert deleted.status_code == 200, deleted.text
    assert client.get(f"/api/v1/backups/{second_id}").status_code == 404
    again = client.delete(f"/api/v1/backups/{second_id}")
    assert again.status_code == 404 and again.json()["code"] == "BACKUP_NOT_FOUND"

    # The metrics equal the catalog's counts: the deleted backup still counted as taken.
    stack.reconciler.queue.wait_idle(60)
    rows = stack.catalog.list_backups()
    samples = {
        (s.name, s.labels.get("app"), s.labels.get("policy")): s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }
    completed_now = sum(1 for r in rows if r.app_id == app.name and r.status == BackupStatus.COMPLETED)
    assert completed_now == 2  # first backup + the restore's safety backup (the second was deleted)
    assert samples[("backup_success_total", app.name, "")] == completed_now + 1
    assert samples[("backup_total", app.name, "")] == len([r for r in rows if r.app_id == app.name]) + 1
    assert samples[("backup_failed_total", app.name, "")] == 0
    assert samples[("backup_duration_seconds_count", app.name, "")] == 3
    assert samples[("restore_total", app.name, None)] == 1 and samples[("restore_success_total", app.name, None)] == 1
    assert samples[("repository_size_bytes", None, None)] > 0
    assert samples[("jobs_in_flight", None, None)] == 0


def test_requests_that_cannot_be_honoured_say_why(
    stack: ApiStack, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    app = wordpress_like(docker_client)
    made_apps.append(app)
    client = stack.client()
    refused = client.post(f"/api/v1/backups/{app.name}", json={"encrypt": False})
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_REQUEST"
    assert "encrypt" in refused.json()["message"]
    nothing = client.post(f"/api/v1/backups/{app.name}", json={"include_database": False, "include_uploads": False})
    assert nothing.status_code == 400
    missing = client.post("/api/v1/backups/no-such-app", json={})
    assert missing.status_code == 404 and missing.json()["code"] == "APP_NOT_FOUND"
    wrong_storage = client.post(f"/api/v1/backups/{app.name}", json={"storage_location": "elsewhere"})
    assert wrong_storage.status_code == 400 and "elsewhere" in wrong_storage.json()["message"]
    malformed = client.post(
        f"/api/v1/backups/{app.name}", content=b'{"description": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "INVALID_REQUEST"
    assert malformed.json()["message"].startswith("the body is not valid JSON")
    unknown_field = client.post(f"/api/v1/backups/{app.name}", json={"encrypted": True})
    assert unknown_field.status_code == 422 and unknown_field.json()["code"] == "VALIDATION_ERROR"
    assert client.get("/api/v1/backups/nope").json()["code"] == "BACKUP_NOT_FOUND"
    assert client.get("/api/v1/restores/nope").status_code == 404
    # Nothing was queued or recorded by the refused requests.
    assert stack.catalog.list_backups() == []


def test_a_restore_into_a_new_app_name_makes_a_clone_through_the_api(
    stack: ApiStack, docker_client: DockerClient, made_apps: list[TestApp]
) -> None:
    """The API writes a Restore resource; the controller's run recreates the app under the
    new name from the backup's recorded settings (these containers were not made by Compose)."""
    app = wordpress_like(docker_client)
    made_apps.append(app)
    mariadb_sql(app, "CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1), (2);")
    (app.mountpoint("uploads") / "photo.jpg").write_bytes(random_bytes(8, 100_000))
    client = stack.client()
    waited = client.post(f"/api/v1/backups/{app.name}?wait=true", json={})
    assert waited.status_code == 200, waited.text
    backup_id = waited.json()["data"]["backup_id"]

    clone = TestApp(docker_client, f"{app.name}-copy")
    made_apps.append(clone)
    accepted = client.post(f"/api/v1/backups/{backup_id}/restore", json={"target_app": clone.name})
    assert accepted.status_code == 202, accepted.text
    done = poll(client, accepted.json()["data"]["url"], {"Succeeded", "Failed", "RolledBack"}, "phase")
    for service in ("db", "web"):
        clone.containers[service] = docker_client.containers.get(f"{clone.name}-{service}-1")
    for key in ("dbdata", "uploads"):
        clone.volumes[key] = docker_client.volumes.get(f"{clone.name}_{key}")
    assert done["phase"] == "Succeeded", done
    assert "recreated through the Docker API" in done["message"]
    assert mariadb_sql(clone, "SELECT COUNT(*) FROM posts") == "2\n"
    assert (clone.mountpoint("uploads") / "photo.jpg").read_bytes() == random_bytes(8, 100_000)
    assert clone.mountpoint("uploads") != app.mountpoint("uploads")
    assert clone.state("web") == "running" and app.state("web") == "running"


def test_a_policy_of_host_paths_is_backed_up_on_demand_through_the_api(stack: ApiStack, tmp_path: Path) -> None:
    data = tmp_path / "etc-platform"
    data.mkdir()
    (data / "platform.conf").write_text("tier=prod\n")
    (stack.resources / "policies").mkdir(exist_ok=True)
    (stack.resources / "policies" / "platform.yaml").write_text(
        "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: platform}\n"
        f"spec:\n  paths: [{data}]\n  storage: local\n  retention: {{keepLast: 5}}\n"
    )
    client = stack.client()
    done = client.post("/api/v1/policies/platform/backups", params={"wait": "true"})
    assert done.status_code == 200, done.text
    backup = done.json()["data"]
    assert (backup["status"], backup["policy"], backup["backup_type"]) == ("completed", "platform", "full")
    detail = client.get(f"/api/v1/backups/{backup['backup_id']}").json()["data"]
    assert [item["name"] for item in detail["items"]] == [f"paths/{str(data).strip('/')}"]
    queued = client.post("/api/v1/policies/platform/backups")
    assert queued.status_code == 202 and queued.json()["data"]["status"] in ("pending", "in_progress", "completed")
    missing = client.post("/api/v1/policies/nobody/backups")
    assert missing.status_code == 404 and missing.json()["code"] == "RESOURCE_NOT_FOUND"


def test_a_backup_is_drilled_through_the_api_and_the_drill_is_polled(
    stack: ApiStack, docker_client: DockerClient, tmp_path: Path
) -> None:
    app = blog_project(docker_client, tmp_path / "blog", BUSYBOX, free_port())
    try:
        app.sql("CREATE TABLE posts (id INT); INSERT INTO posts VALUES (1), (2), (3);")
        (stack.resources / "policies").mkdir(exist_ok=True)
        (stack.resources / "policies" / "blog.yaml").write_text(
            "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: blog}\n"
            f"spec:\n  app: {app.name}\n  storage: local\n  retention: {{keepLast: 5}}\n  verify:\n    checks:\n"
            '      - sql: {service: db, database: wordpress, query: "SELECT COUNT(*) FROM posts", expect: "3"}\n'
        )
        client = stack.client()
        made = client.post("/api/v1/policies/blog/backups", params={"wait": "true"})
        assert made.status_code == 200, made.text
        queued = client.post(f"/api/v1/backups/{made.json()['data']['backup_id']}/verify")
        assert queued.status_code == 202, queued.text
        drill = poll(client, queued.json()["data"]["url"], {"Passed", "Failed"}, "result")
        assert drill["result"] == "Passed", drill
        assert drill["checks"] == [
            {
                "check": "sql db/wordpress: SELECT COUNT(*) FROM posts",
                "passed": True,
                "detail": "returned '3', expected '3'",
            }
        ]
        assert drill["duration_seconds"] > 0 and drill["policy"] == "blog"
        assert client.get("/api/v1/drills/drill-none").status_code == 404
        metrics = client.get("/metrics").text
        assert f'last_verified_restore_timestamp_seconds{{app="{app.name}",policy="blog"}}' in metrics
        assert not [c for c in docker_client.containers.list(all=True) if c.name.startswith("lbdrill-")]
    finally:
        app.remove()
