"""Any service Apprise knows (Telegram, Pushover, Matrix, PagerDuty, mailto://, ...), through
the Apprise library, from one URL kept in a secret."""

from __future__ import annotations

from dataclasses import dataclass

from controller.errors import DeliveryFailed
from controller.notify.message import Message


@dataclass(frozen=True)
class AppriseDestination:
    url: str

    @property
    def described(self) -> str:
        return f"apprise ({self.url.split('://', 1)[0]}://)"

    def send(self, message: Message) -> None:
        import apprise  # plugins load on import: only in a process that sends through it

        service = apprise.Apprise()
        scheme = self.url.split("://", 1)[0]
        if not service.add(self.url):
            raise DeliveryFailed(f"Apprise does not accept this {scheme}:// URL; see its wiki for the URL's form")
        kind = apprise.NotifyType.FAILURE if message.problem else apprise.NotifyType.SUCCESS
        if message.state in ("info", "test"):
            kind = apprise.NotifyType.INFO
        if not service.notify(title=message.title, body=message.plain_text(), notify_type=kind):
            raise DeliveryFailed(f"Apprise could not deliver to the {scheme}:// service (its log says why)")
