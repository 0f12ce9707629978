"""Notifier: where people hear that a backup failed, fell behind or stopped proving itself.
One destination each (a webhook, email, Healthchecks pings or an Apprise URL), the events
it is told about, and a selector of the policies, apps and storages it covers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from controller.resources.meta import (
    API_VERSION,
    INLINE,
    REFERENCE,
    ApiVersion,
    Condition,
    Model,
    ObjectMeta,
    SecretRef,
    StatusMode,
)


class NotifierEvent(StrEnum):
    """What a Notifier can be told. The warnings are its default; the successes on request."""

    BACKUP_FAILED = "BackupFailed"  # a backup ended failed (one message until one succeeds again)
    BACKUP_OVERDUE = "BackupOverdue"  # no successful backup within the schedule's interval plus a grace, or rpo
    BACKUP_WARNING = "BackupWarning"  # a backup completed, but a source was empty or shrank by half
    RESTORE_FAILED = "RestoreFailed"  # a restore changed nothing, or could not be undone
    RESTORE_ROLLED_BACK = "RestoreRolledBack"  # a restore failed and the safety backup was put back
    DRILL_FAILED = "DrillFailed"  # a restore drill could not restore the backup, or a check failed
    CHECK_FAILED = "CheckFailed"  # a storage's check found damage
    STORAGE_UNREACHABLE = "StorageUnreachable"  # a storage cannot be reached or opened
    POLICY_STALLED = "PolicyStalled"  # a policy's last three backups failed
    BACKUP_SUCCEEDED = "BackupSucceeded"
    RESTORE_SUCCEEDED = "RestoreSucceeded"
    DRILL_SUCCEEDED = "DrillSucceeded"


WARNINGS: tuple[NotifierEvent, ...] = tuple(NotifierEvent)[:9]


class WebhookFormat(StrEnum):
    JSON = "json"  # the documented, versioned payload (docs/notifications.md)
    SLACK = "slack"  # a Slack incoming webhook (also Mattermost, Rocket.Chat)
    DISCORD = "discord"  # a Discord channel webhook
    TEAMS = "teams"  # a Microsoft Teams workflow webhook (an Adaptive Card)
    NTFY = "ntfy"  # an ntfy topic URL
    GOTIFY = "gotify"  # a Gotify /message?token=... URL


def _check_url(value: str) -> str:
    if "://" not in value:
        raise ValueError("expected a URL with its scheme (https://...); one that holds a token belongs in a secret")
    return value


def _written_as(value: object) -> str:
    return INLINE if isinstance(value, str) else REFERENCE


# A URL written inline, or read from a secret (`{env: NAME}`): a chat webhook's URL is one.
# The discriminator sends each form to its own checks, so an error names only that form's.
Url = Annotated[
    Annotated[str, AfterValidator(_check_url), Tag(INLINE)] | Annotated[SecretRef, Tag(REFERENCE)],
    Discriminator(_written_as),
]


class Webhook(Model):
    url: Url = Field(description="Where to POST: a URL, or a secret reference to one.")
    format: WebhookFormat = WebhookFormat.JSON
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (no secrets here).")
    hmac_secret: SecretRef | None = Field(
        default=None,
        description="Signs each body: header X-Lifeboat-Signature-256: sha256=<hex HMAC-SHA256 of the body>.",
    )


class EmailTls(StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # no encryption: a relay on this host or a trusted network only


class Email(Model):
    host: str = Field(description="SMTP server.")
    port: int | None = Field(default=None, ge=1, le=65535, description="587 (starttls), 465 (tls) or 25 (none).")
    tls: EmailTls = EmailTls.STARTTLS
    username: str | None = None
    password: SecretRef | None = None
    from_: str = Field(alias="from", description="The sender address.")
    to: list[str] = Field(min_length=1, description="Recipient addresses.")

    @model_validator(mode="after")
    def _password_with_user(self) -> Email:
        if (self.username is None) != (self.password is None):
            raise ValueError("expected both 'username' and 'password', or neither")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {EmailTls.STARTTLS: 587, EmailTls.TLS: 465, EmailTls.NONE: 25}[self.tls]


class Healthchecks(Model):
    url: Url = Field(
        description="The check's ping URL; {policy} is replaced by the policy's name (a slug URL per policy). "
        "Each backup run pings <url>/start, then <url> or <url>/fail."
    )


class Apprise(Model):
    url: Url = Field(description="An Apprise URL (mailto://, tgram://, pover://, ...), usually a secret reference.")


class Selector(Model):
    """Which notices a Notifier gets. Each field given must match; a notice without that
    field (a storage's notice has no app) does not match a selector that names it."""

    policies: list[str] = Field(default_factory=list, description="Policy name globs (fnmatch).")
    apps: list[str] = Field(default_factory=list, description="App name globs.")
    storages: list[str] = Field(default_factory=list, description="Storage name globs.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels the notice's policy (else its storage) must carry."
    )


class RateLimit(Model):
    messages: int = Field(ge=1, description="At most this many messages...")
    per_minutes: int = Field(default=60, ge=1, le=10080, description="...in any window of this many minutes.")


class NotifierSpec(Model):
    webhook: Webhook | None = None
    email: Email | None = None
    healthchecks: Healthchecks | None = None
    apprise: Apprise | None = None
    events: list[NotifierEvent] = Field(
        default_factory=lambda: list(WARNINGS),
        description="What to send; every warning by default. Healthchecks pings every backup run instead.",
    )
    selector: Selector = Field(default_factory=Selector)
    rate_limit: RateLimit | None = Field(
        default=None,
        description="Messages over it are held back and counted in the next one sent. Default: 60 an hour "
        "(none for healthchecks, whose pings must all arrive).",
    )
    status_mode: StatusMode = StatusMode.INLINE

    @model_validator(mode="after")
    def _one_destination(self) -> NotifierSpec:
        given = [name for name in ("webhook", "email", "healthchecks", "apprise") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"expected exactly one of webhook, email, healthchecks, apprise; got {', '.join(given) or 'none'}"
            )
        return self

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: list[NotifierEvent]) -> list[NotifierEvent]:
        if not value:
            raise ValueError("expected at least one event (omit 'events' for every warning)")
        return value

    @property
    def destination(self) -> str:
        """How tables name it: "webhook (slack)", "email", "healthchecks", "apprise"."""
        if self.webhook is not None:
            return f"webhook ({self.webhook.format.value})"
        return next(name for name in ("email", "healthchecks", "apprise") if getattr(self, name) is not None)

    @property
    def effective_rate_limit(self) -> RateLimit | None:
        if self.rate_limit is not None or self.healthchecks is not None:
            return self.rate_limit
        return RateLimit(messages=60, per_minutes=60)


class LastDelivery(Model):
    time: datetime
    event: str = Field(description="The event, with its state: BackupFailed, BackupFailed (resolved), test.")
    subject: str = Field(description="What it was about: BackupPolicy/blog.")


class NotifierStatus(Model):
    observed_generation: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    last_delivery: LastDelivery | None = None
    last_error: str | None = None
    delivered: int = Field(default=0, description="Messages delivered (counted on across controller restarts).")
    failed: int = Field(default=0, description="Messages given up on after every retry.")
    suppressed: int = Field(default=0, description="Messages held back by the rate limit.")


class Notifier(Model):
    api_version: ApiVersion = API_VERSION
    kind: Literal["Notifier"] = "Notifier"
    metadata: ObjectMeta
    spec: NotifierSpec
    status: NotifierStatus | None = None
