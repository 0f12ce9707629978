"""Mail over SMTP (the standard library's smtplib): STARTTLS, TLS from the first byte, or a
plain connection to a relay that needs none."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from controller.errors import DeliveryFailed
from controller.notify.http import TIMEOUT_SECONDS
from controller.notify.message import Message
from controller.resources.notifier import Email, EmailTls


@dataclass(frozen=True)
class MailDestination:
    settings: Email
    password: str | None = None

    @property
    def described(self) -> str:
        return f"mail via {self.settings.host}:{self.settings.effective_port} to {', '.join(self.settings.to)}"

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"[lifeboat] {message.title}"
        mail["From"] = self.settings.from_
        mail["To"] = ", ".join(self.settings.to)
        mail["X-Lifeboat-Event"] = message.event
        mail["X-Lifeboat-Id"] = message.id
        mail.set_content(message.plain_text())
        settings = self.settings
        try:
            smtp: smtplib.SMTP
            if settings.tls == EmailTls.TLS:
                context = ssl.create_default_context()
                smtp = smtplib.SMTP_SSL(
                    settings.host, settings.effective_port, timeout=TIMEOUT_SECONDS, context=context
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.effective_port, timeout=TIMEOUT_SECONDS)
            with smtp:
                if settings.tls == EmailTls.STARTTLS:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username is not None and self.password is not None:
                    smtp.login(settings.username, self.password)
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as err:
            where = f"{settings.host}:{settings.effective_port}"
            raise DeliveryFailed(f"mail via {where} failed: {err.__class__.__name__}: {_first_line(err)}") from None


def _first_line(err: Exception) -> str:
    if isinstance(err, smtplib.SMTPResponseException):
        detail = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return f"{err.smtp_code} {detail.splitlines()[0] if detail else ''}".strip()
    return (str(err).splitlines() or [""])[0]
