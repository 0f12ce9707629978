"""Healthchecks pings (healthchecks.io or a self-hosted instance, or anything that speaks its
URLs): `<url>/start` when a backup run starts, `<url>` when it succeeds, `<url>/fail` when it
fails. The check outside this host then notices a run that never ends and a host that is gone."""

from __future__ import annotations

from dataclasses import dataclass

from controller.notify.http import post, server_of
from controller.notify.message import Message

# event → the suffix pinged; a healthchecks Notifier is sent these and nothing else.
PINGS = {"BackupStarted": "/start", "BackupSucceeded": "", "BackupFailed": "/fail"}


@dataclass(frozen=True)
class HealthchecksDestination:
    url: str  # may hold {policy}: a slug URL per policy

    @property
    def described(self) -> str:
        return f"healthchecks pings to {server_of(self.url)}"

    def ping_url(self, message: Message) -> str:
        """A test message goes to `/log`, which records it without changing the check's state."""
        base = self.url.replace("{policy}", message.policy or message.name).rstrip("/")
        return base + ("/log" if message.state == "test" else PINGS[message.event])

    def send(self, message: Message) -> None:
        body = message.plain_text().encode()[:10_000]  # kept as the ping's log; Healthchecks stores 10 kB
        post(self.ping_url(message), body, "text/plain; charset=utf-8")
