"""A Notifier's message as the tests send and select it: a policy's backup that failed."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.notify.message import Message

BACKUP_FAILED = Message(
    id="host-a:7",
    event="BackupFailed",
    state="firing",
    time=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
    host="host-a",
    kind="BackupPolicy",
    name="blog-nightly",
    text="backup blog-20261201-030000-abc123: no space left in /srv/backups",
    app="blog",
    policy="blog-nightly",
    storage="offsite",
    backup="blog-20261201-030000-abc123",
    path="/api/v1/backups/blog-20261201-030000-abc123",
    notifier="ops",
)
