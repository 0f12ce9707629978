"""Keys, envelopes and schedules against a running server, without Docker (the engine is a
socket that is not there, so the API's Docker answers are its real 503s)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest
import yaml

from controller.apps.docker_api import connect
from controller.catalog.models import Backup, BackupStatus
from controller.repository.archiver import Progress
from controller.resources.loader import load_paths
from tests.support.api_stack import PASSPHRASE, ApiStack, start_stack, write_storage

NO_ENGINE = partial(connect, "unix:///nonexistent/docker.sock", 2)
ROUTES = [
    ("GET", "/api/v1/backups"),
    ("POST", "/api/v1/backups/someapp"),
    ("GET", "/api/v1/backups/some-backup"),
    ("DELETE", "/api/v1/backups/some-backup"),
    ("POST", "/api/v1/backups/some-backup/restore"),
    ("GET", "/api/v1/backups/schedule"),
    ("PUT", "/api/v1/backups/schedule"),
    ("GET", "/api/v1/backups/download/some-backup"),
    ("GET", "/api/v1/restores/some-restore"),
]
WRITES = [(method, path) for method, path in ROUTES if method != "GET"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ApiStack]:
    started = start_stack(tmp_path, NO_ENGINE, max_request_bytes=4096)
    yield started
    started.close()


@pytest.mark.parametrize("key", [None, "", "lb_not-a-key", "wrong"])
def test_every_route_wants_a_valid_key(stack: ApiStack, key: str | None) -> None:
    with httpx.Client(base_url=stack.url, headers={"X-API-Key": key} if key is not None else {}) as client:
        for method, path in ROUTES:
            answer = client.request(method, path, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json() == {
                "code": "UNAUTHORIZED",
                "message": "a valid X-API-Key header is required",
                "data": None,
            }


def test_read_only_keys_read_but_never_write(stack: ApiStack) -> None:
    with stack.client(stack.read_key) as client:
        assert client.get("/api/v1/backups").status_code == 200
        assert client.get("/api/v1/backups/schedule").status_code == 200
        for method, path in WRITES:
            answer = client.request(method, path, json={})
            assert answer.status_code == 403 and answer.json()["code"] == "FORBIDDEN", (method, path)
    assert not (stack.resources / "policies").exists() and not (stack.resources / "restores").exists()


def test_no_key_or_passphrase_reaches_a_response_or_a_log_line(
    stack: ApiStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for key in (stack.admin_key, stack.read_key, stack.admin_key + "x"):
        with stack.client(key) as client:
            for method, path in ROUTES:
                answer = client.request(method, path, json={})
                seen.append(answer.text + str(answer.headers))
            seen.append(client.get("/metrics").text + client.get("/readyz").text)
    stack.reconciler.queue.wait_idle(30)
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert logged  # the requests were logged (uvicorn's access log), just not their keys
    for secret in (stack.admin_key, stack.read_key, PASSPHRASE):
        assert secret not in logged
        assert all(secret not in text for text in seen)


def test_bodies_over_the_limit_are_refused(stack: ApiStack) -> None:
    with stack.client() as client:
        big = client.put("/api/v1/backups/schedule", content=b"{" + b" " * 10_000 + b"}")
        assert big.status_code == 413 and big.json()["code"] == "REQUEST_TOO_LARGE"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"app_id": "x", "cron": "'
            for _ in range(20):
                yield b"a" * 1000
            yield b'"}'

        streamed = client.put("/api/v1/backups/schedule", content=chunks())
        assert streamed.status_code == 413


def test_the_docker_engine_being_away_is_a_503_with_its_code(stack: ApiStack) -> None:
    with stack.client() as client:
        answer = client.post("/api/v1/backups/someapp", json={})
    assert answer.status_code == 503 and answer.json()["code"] == "DOCKER_UNAVAILABLE"
    assert stack.catalog.list_backups() == []


def test_health_readiness_and_unknown_routes(stack: ApiStack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        assert client.get("/healthz").json()["data"]["status"] == "ok"
        ready = client.get("/readyz").json()["data"]
        assert ready == {"status": "ok", "checks": {"catalog": "ok", "resources": "ok"}}
        assert client.get("/nowhere").json()["code"] == "NOT_FOUND"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "jobs_in_flight 0.0" in metrics.text
        shutil.rmtree(stack.resources)
        unready = client.get("/readyz")
        assert unready.status_code == 503 and unready.json()["code"] == "NOT_READY"
        assert unready.json()["data"]["checks"]["resources"].endswith("not readable")


def test_a_schedule_put_writes_an_api_managed_policy_validated_like_apply(stack: ApiStack) -> None:
    with stack.client() as client:
        put = client.put(
            "/api/v1/backups/schedule",
            json={"app_id": "wordpress001", "frequency": "daily", "time": "02:30", "retention_days": 14},
        )
        assert put.status_code == 200, put.text
        view = put.json()["data"]
        assert view["policy"] == "wordpress001" and view["managed_by_api"] and view["storage_location"] == "local"
        path = stack.resources / "policies" / "wordpress001.yaml"
        written = yaml.safe_load(path.read_text())
        assert written["metadata"]["labels"] == {"lifeboat.io/managed-by": "api"}
        assert written["spec"]["schedule"] == {"frequency": "daily", "time": "02:30", "timezone": "UTC"}
        assert written["spec"]["retention"] == {"days": 14}
        assert not load_paths([stack.resources]).problems  # what `lifeboat validate` would say

        # An update keeps the file and changes the spec; the loop writes its status.
        again = client.put(
            "/api/v1/backups/schedule", json={"app_id": "wordpress001", "cron": "0 3 * * *", "enabled": False}
        )
        assert again.status_code == 200 and again.json()["data"]["cron"] == "0 3 * * *"
        assert again.json()["data"]["enabled"] is False
        listed = client.get("/api/v1/backups/schedule", params={"app_id": "wordpress001"}).json()["data"]
        assert [v["policy"] for v in listed] == ["wordpress001"]

        bad = client.put("/api/v1/backups/schedule", json={"app_id": "other", "cron": "61 * * * *"})
        assert bad.status_code == 422 and bad.json()["code"] == "INVALID_RESOURCE"
        assert "spec.schedule" in bad.json()["message"] and "request body" in bad.json()["message"]
        assert not (stack.resources / "policies" / "other.yaml").exists()

        # A policy kept in files (GitOps) is never overwritten by the API.
        (stack.resources / "policies" / "gitea.yaml").write_text(
            "apiVersion: lifeboat.io/v1alpha1\nkind: BackupPolicy\nmetadata: {name: gitea}\n"
            "spec: {app: gitea, storage: local, retention: {keepLast: 3}}\n"
        )
        before = (stack.resources / "policies" / "gitea.yaml").read_text()
        conflict = client.put("/api/v1/backups/schedule", json={"app_id": "gitea", "cron": "@daily"})
        assert conflict.status_code == 409 and "gitea.yaml" in conflict.json()["message"]
        assert (stack.resources / "policies" / "gitea.yaml").read_text().startswith(before.rstrip("\n"))

        # With two storages and none named, the request says which to choose from.
        write_storage(stack.resources, stack.resources.parent / "repo2", name="second")
        ambiguous = client.put("/api/v1/backups/schedule", json={"app_id": "shop", "cron": "@daily"})
        assert ambiguous.status_code == 400
        assert ambiguous.json()["message"] == "storage_location: name the BackupStorage to use (local, second)"


def test_a_running_backup_shows_its_progress(stack: ApiStack) -> None:
    now = datetime.now(UTC)
    stack.catalog.add_backup(
        Backup(
            backup_id="shop-1",
            app_id="shop",
            app_name="shop",
            backup_type="incremental",
            status=BackupStatus.IN_PROGRESS,
            created_at=now,
        )
    )
    stack.reconciler.progress["shop"] = Progress(files=3, bytes_read=4096, bytes_added=100, current="volumes/data/x")
    with stack.client(stack.read_key) as client:
        running = client.get("/api/v1/backups/shop-1").json()["data"]
        assert running["status"] == "in_progress"
        assert running["progress"] == {"files": 3, "bytes_read": 4096, "added_bytes": 100, "current": "volumes/data/x"}
        del stack.reconciler.progress["shop"]
        assert client.get("/api/v1/backups/shop-1").json()["data"]["progress"] is None
