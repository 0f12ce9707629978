"""What a Notifier sends, whatever the destination: one Message. The json format is this
message as data (`payload()`, versioned by PAYLOAD_VERSION); chat formats and mail render
its title, text and fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PAYLOAD_VERSION = "lifeboat.io/notification/v1"
_SUBJECTS = {"BackupPolicy": "policy", "App": "app", "BackupStorage": "storage", "Notifier": "notifier"}


@dataclass(frozen=True)
class Message:
    id: str  # the same on every retry: a receiver can drop a repeat
    event: str  # BackupFailed, BackupSucceeded, ..., or Test
    state: str  # firing, repeat, resolved, info, test
    time: datetime
    host: str
    kind: str  # the subject: BackupPolicy, App, BackupStorage
    name: str
    text: str  # what happened: the cause's first line
    app: str = ""
    policy: str = ""
    storage: str = ""
    backup: str = ""
    restore: str = ""
    drill: str = ""
    path: str = ""  # the object's path in the REST API
    notifier: str = ""
    suppressed: int = 0  # messages the rate limit left out since the previous one sent

    @property
    def problem(self) -> bool:
        return self.state in ("firing", "repeat")

    @property
    def subject(self) -> str:
        """How people name it: "policy blog", "storage offsite"."""
        return f"{_SUBJECTS.get(self.kind, self.kind)} {self.name}"

    @property
    def title(self) -> str:
        prefix = {"resolved": "Resolved: ", "test": ""}.get(self.state, "")
        return f"{prefix}{self.event}: {self.subject} on {self.host}"

    def fields(self) -> list[tuple[str, str]]:
        """The named facts, those that apply."""
        named = [
            ("App", self.app),
            ("Policy", self.policy),
            ("Storage", self.storage),
            ("Backup", self.backup),
            ("Restore", self.restore),
            ("Drill", self.drill),
            ("Host", self.host),
            ("API", self.path),
        ]
        return [(label, value) for label, value in named if value]

    @property
    def note(self) -> str:
        if not self.suppressed:
            return ""
        return f"({self.suppressed} earlier message(s) were not sent: over this Notifier's rate limit)"

    def plain_text(self) -> str:
        """Mail bodies, Apprise and ntfy: the text, the facts, a line each."""
        lines = [self.text, "", *(f"{label}: {value}" for label, value in self.fields())]
        lines.append(f"Time: {self.time.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
        return "\n".join([*lines, *([self.note] if self.note else [])])

    def payload(self) -> dict[str, Any]:
        """The json format (docs/notifications.md documents each field)."""
        return {
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "event": self.event,
            "state": self.state,
            "severity": "warning" if self.problem else "info",
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "host": self.host,
            "subject": {"kind": self.kind, "name": self.name},
            "title": self.title,
            "message": self.text,
            "app": self.app or None,
            "policy": self.policy or None,
            "storage": self.storage or None,
            "backup": self.backup or None,
            "restore": self.restore or None,
            "drill": self.drill or None,
            "path": self.path or None,
            "notifier": self.notifier,
            "suppressed": self.suppressed,
        }


def sample_message(notifier: str, host: str, now: datetime) -> Message:
    """What `lifeboat notify test` sends."""
    return Message(
        id=f"{host}:test:{int(now.timestamp())}",
        event="Test",
        state="test",
        time=now,
        host=host,
        kind="Notifier",
        name=notifier,
        text=f"a test message from Lifeboat's Notifier {notifier}: this destination works",
        notifier=notifier,
    )
