"""A webhook: the message rendered in its format, POSTed, signed when a secret is given."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from controller.notify.formats import render
from controller.notify.http import post, server_of
from controller.notify.message import Message
from controller.resources.notifier import WebhookFormat

SIGNATURE_HEADER = "X-Lifeboat-Signature-256"


def signature(secret: bytes, body: bytes) -> str:
    """The header's value: "sha256=" and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookDestination:
    url: str
    form: WebhookFormat
    headers: Mapping[str, str]
    hmac_secret: bytes | None = None

    @property
    def described(self) -> str:
        return f"webhook {self.form.value} to {server_of(self.url)}"

    def send(self, message: Message) -> None:
        rendered = render(message, self.form)
        headers = {**self.headers, **rendered.headers, "X-Lifeboat-Event": message.event, "X-Lifeboat-Id": message.id}
        if self.hmac_secret is not None:
            headers[SIGNATURE_HEADER] = signature(self.hmac_secret, rendered.body)
        post(self.url, rendered.body, rendered.content_type, headers)
