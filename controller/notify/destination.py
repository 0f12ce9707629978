"""A Notifier's destination, built from its spec with its secrets read at build time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from controller.notify.apprise_service import AppriseDestination
from controller.notify.healthchecks import HealthchecksDestination
from controller.notify.mail import MailDestination
from controller.notify.message import Message
from controller.notify.webhook import WebhookDestination
from controller.resources.meta import SecretRef
from controller.resources.notifier import NotifierSpec
from controller.resources.secrets import read_secret


class Destination(Protocol):
    @property
    def described(self) -> str:
        """Where messages go, without any secret: "webhook slack to https://hooks.slack.com"."""
        ...

    def send(self, message: Message) -> None:
        """Deliver once; raises DeliveryFailed. Retries are the caller's."""
        ...


def destination_for(name: str, spec: NotifierSpec, environ: Mapping[str, str]) -> Destination:
    """Raises InvalidConfig when a secret reference cannot be read."""

    def url(value: str | SecretRef, field: str) -> str:
        if isinstance(value, str):
            return value
        return read_secret(value, environ, f"Notifier {name} {field}").decode().strip()

    if spec.webhook is not None:
        hook = spec.webhook
        secret = read_secret(hook.hmac_secret, environ, f"Notifier {name} hmacSecret") if hook.hmac_secret else None
        return WebhookDestination(url(hook.url, "webhook.url"), hook.format, dict(hook.headers), secret)
    if spec.email is not None:
        password = spec.email.password
        read = read_secret(password, environ, f"Notifier {name} email.password").decode() if password else None
        return MailDestination(spec.email, read)
    if spec.healthchecks is not None:
        return HealthchecksDestination(url(spec.healthchecks.url, "healthchecks.url"))
    assert spec.apprise is not None  # NotifierSpec holds exactly one
    return AppriseDestination(url(spec.apprise.url, "apprise.url"))
