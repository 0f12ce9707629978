"""Each destination against a real receiver on loopback: what arrives, in which shape, signed
how, and what a refusal says (the server, never the URL's secret path)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from controller.errors import DeliveryFailed
from controller.notify.destination import destination_for
from controller.notify.message import PAYLOAD_VERSION, Message
from controller.notify.webhook import SIGNATURE_HEADER
from controller.resources.notifier import NotifierSpec
from tests.support.compose_apps import free_port
from tests.support.messages import BACKUP_FAILED as FAILED
from tests.support.receivers import http_receiver, smtp_receiver


def spec(**destination: object) -> NotifierSpec:
    return NotifierSpec.model_validate(destination)


def test_json_arrives_as_the_versioned_payload_signed_with_the_hmac_secret() -> None:
    with http_receiver() as receiver:
        environ = {"HOOK_SECRET": "s3cr3t-signing-key", "HOOK_URL": f"{receiver.url}/hooks/T0KEN123"}
        webhook = {"url": {"env": "HOOK_URL"}, "hmacSecret": {"env": "HOOK_SECRET"}, "headers": {"X-Team": "ops"}}
        destination_for("ops", spec(webhook=webhook), environ).send(FAILED)
        [request] = receiver.wait_for(1)
    assert (request.method, request.path) == ("POST", "/hooks/T0KEN123")
    expected = hmac.new(b"s3cr3t-signing-key", request.body, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert request.headers["X-Team"] == "ops" and request.headers["X-Lifeboat-Event"] == "BackupFailed"
    payload = request.json()
    assert payload["version"] == PAYLOAD_VERSION and payload["id"] == "host-a:7"
    assert (payload["event"], payload["state"], payload["severity"]) == ("BackupFailed", "firing", "warning")
    assert payload["subject"] == {"kind": "BackupPolicy", "name": "blog-nightly"}
    assert (payload["app"], payload["policy"], payload["storage"]) == ("blog", "blog-nightly", "offsite")
    assert payload["message"].startswith("backup blog-20261201") and payload["host"] == "host-a"
    assert (
        payload["path"] == "/api/v1/backups/blog-20261201-030000-abc123" and payload["time"] == "2026-12-01T03:00:00Z"
    )
    assert b"s3cr3t-signing-key" not in request.body


def test_a_changed_body_does_not_verify() -> None:
    with http_receiver() as receiver:
        destination_for("ops", spec(webhook={"url": receiver.url, "hmacSecret": {"env": "K"}}), {"K": "key1"}).send(
            FAILED
        )
        [request] = receiver.wait_for(1)
    forged = hmac.new(b"key1", request.body.replace(b"firing", b"resolved"), hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER] != f"sha256={forged}"


@pytest.mark.parametrize(
    ("form", "check"),
    [
        (
            "slack",
            lambda b: (
                b["text"].startswith("BackupFailed: policy blog-nightly on host-a")
                and b["attachments"][0]["color"] == "#d93f0b"
                and {"title": "App", "value": "blog", "short": True} in b["attachments"][0]["fields"]
            ),
        ),
        ("discord", lambda b: b["embeds"][0]["title"].startswith("BackupFailed") and b["embeds"][0]["color"] > 0),
        (
            "teams",
            lambda b: (
                b["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
                and b["attachments"][0]["content"]["body"][0]["text"].startswith("BackupFailed")
            ),
        ),
        ("gotify", lambda b: b["priority"] == 8 and "no space left" in b["message"]),
    ],
)
def test_chat_formats_arrive_in_their_services_shapes(form: str, check: object) -> None:
    with http_receiver() as receiver:
        destination_for("ops", spec(webhook={"url": receiver.url, "format": form}), {}).send(FAILED)
        [request] = receiver.wait_for(1)
    assert request.headers["Content-Type"] == "application/json"
    assert callable(check) and check(request.json())


def test_ntfy_gets_the_text_as_body_and_the_title_and_priority_as_headers() -> None:
    with http_receiver() as receiver:
        destination_for("ops", spec(webhook={"url": f"{receiver.url}/backups", "format": "ntfy"}), {}).send(FAILED)
        [request] = receiver.wait_for(1)
    assert request.path == "/backups" and request.headers["Title"] == FAILED.title
    assert request.headers["Priority"] == "high" and request.body.decode().startswith("backup blog-20261201")


def test_a_refusal_names_the_server_and_never_the_secret_path() -> None:
    with http_receiver() as receiver:
        receiver.status = 404
        hook = destination_for("ops", spec(webhook={"url": f"{receiver.url}/services/T0/B0/XXSECRETXX"}), {})
        with pytest.raises(DeliveryFailed) as refused:
            hook.send(FAILED)
    assert str(refused.value) == f"POST to {receiver.url} answered HTTP 404 Not Found"
    closed = destination_for("ops", spec(webhook={"url": f"http://127.0.0.1:{free_port()}/XXSECRETXX"}), {})
    with pytest.raises(DeliveryFailed, match="refused") as unreachable:
        closed.send(FAILED)
    assert "XXSECRETXX" not in str(unreachable.value) + hook.described + closed.described


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_mail_arrives_at_a_real_smtp_server_after_a_login() -> None:
    with smtp_receiver("lifeboat", "mail-pass-42") as server:
        email = {
            "host": "127.0.0.1",
            "port": server.port,
            "tls": "none",
            "username": "lifeboat",
            "password": {"env": "MAIL_PASSWORD"},
            "from": "lifeboat@host-a.example",
            "to": ["ops@example.com", "oncall@example.com"],
        }
        destination_for("ops", spec(email=email), {"MAIL_PASSWORD": "mail-pass-42"}).send(FAILED)
        [(sender, recipients, mail)] = server.wait_for(1)
        with pytest.raises(DeliveryFailed, match="SMTPAuthenticationError: 535") as refused:
            destination_for("ops", spec(email=email), {"MAIL_PASSWORD": "wrong-pass"}).send(FAILED)
    assert sender == "lifeboat@host-a.example" and recipients == ["ops@example.com", "oncall@example.com"]
    assert mail["Subject"] == "[lifeboat] BackupFailed: policy blog-nightly on host-a"
    body = mail.get_payload(decode=True).decode()
    assert "no space left in /srv/backups" in body and "Policy: blog-nightly" in body and "API: /api/v1/" in body
    assert "wrong-pass" not in str(refused.value) and "\n" not in str(refused.value)


def test_healthchecks_pings_start_success_fail_and_logs_a_test_per_policy_slug() -> None:
    with http_receiver() as receiver:
        pings = destination_for("hc", spec(healthchecks={"url": f"{receiver.url}/ping/KEY/{{policy}}"}), {})
        for event, state in (("BackupStarted", "info"), ("BackupSucceeded", "info"), ("BackupFailed", "firing")):
            pings.send(Message(**{**FAILED.__dict__, "event": event, "state": state}))
        pings.send(Message(**{**FAILED.__dict__, "event": "Test", "state": "test"}))
        receiver.wait_for(4)
    assert receiver.paths() == [
        "/ping/KEY/blog-nightly/start",
        "/ping/KEY/blog-nightly",
        "/ping/KEY/blog-nightly/fail",
        "/ping/KEY/blog-nightly/log",
    ]
    assert b"no space left" in receiver.requests[2].body


def test_apprise_delivers_through_its_json_service() -> None:
    with http_receiver() as receiver:
        url = receiver.url.replace("http://", "json://") + "/apprise"
        destination_for("ops", spec(apprise={"url": {"env": "APPRISE_URL"}}), {"APPRISE_URL": url}).send(FAILED)
        [request] = receiver.wait_for(1)
        receiver.status = 500
        with pytest.raises(DeliveryFailed, match=r"Apprise could not deliver to the json:// service"):
            destination_for("ops", spec(apprise={"url": url}), {}).send(FAILED)
    body = request.json()
    assert request.path == "/apprise" and body["title"] == FAILED.title and "no space left" in body["message"]
    assert body["type"] == "failure"
