"""`lifeboat apikey` and `lifeboat api` as processes: a key is printed once and stored as a
hash, works without a restart, stops working when revoked; JSON log lines never hold it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.conftest import Lifeboat, api_process


def test_keys_from_the_cli_open_the_api_until_revoked(lifeboat: Lifeboat, tmp_path: Path) -> None:
    created = lifeboat("apikey", "create", "platform")
    assert created.code == 0, created.err
    key = created.out.strip()
    assert key.startswith("lb_") and "shown once" in created.err
    reader = lifeboat("apikey", "create", "dashboard", "--read-only").out.strip()
    assert lifeboat("apikey", "create", "platform").code == 1  # names are unique
    keys_file = lifeboat.home / "data" / "lifeboat" / "api-keys.yaml"
    stored = keys_file.read_text()
    assert key not in stored and reader not in stored and stored.count("sha256:") == 2
    assert keys_file.stat().st_mode & 0o777 == 0o600
    listed = lifeboat("apikey", "list").out
    rows = [line.split()[:2] for line in listed.splitlines()[1:]]
    assert rows == [["platform", "admin"], ["dashboard", "read"]] and key not in listed
    assert lifeboat("apikey", "list", "-o", "name").out.split() == ["platform", "dashboard"]

    lifeboat.resources.mkdir(parents=True)
    log = tmp_path / "api.log"
    with api_process(lifeboat, log) as (process, url), httpx.Client(base_url=url) as client:
        assert client.get("/api/v1/backups", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/api/v1/backups", headers={"X-API-Key": reader}).status_code == 200
        assert client.put("/api/v1/backups/schedule", headers={"X-API-Key": reader}, json={}).status_code == 403
        assert client.get("/api/v1/backups").status_code == 401
        assert lifeboat("apikey", "revoke", "dashboard").code == 0
        assert client.get("/api/v1/backups", headers={"X-API-Key": reader}).status_code == 401
        assert client.get("/api/v1/backups", headers={"X-API-Key": key}).status_code == 200
    assert process.returncode == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any('"GET /api/v1/backups HTTP/1.1" 401' in line["message"] for line in lines)
    assert key not in log.read_text() and reader not in log.read_text()
