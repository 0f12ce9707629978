"""Which backups a policy's retention keeps: restic's `forget --keep-*` rules, plus `days`.

A backup is kept when any rule keeps it. `keepDaily: n` keeps the newest backup of each of
the n most recent days that have a backup (weekly: ISO weeks, monthly, yearly likewise, in
the policy's time zone); `keepLast: n` the n newest; `days: d` every backup younger than d
days. The newest backup is always kept, whatever the rules say: retention never leaves a
policy without its latest good copy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from controller.resources.backup_policy import Retention


@dataclass(frozen=True)
class Dated:
    id: str
    created_at: datetime  # aware


@dataclass
class RetentionPlan:
    keep: dict[str, list[str]] = field(default_factory=dict)  # id → the rules that keep it
    forget: list[str] = field(default_factory=list)  # newest first


_BUCKETS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar()[:2]),
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: (t.year,),
}


def plan_retention(backups: Sequence[Dated], retention: Retention, now: datetime, zone: ZoneInfo) -> RetentionPlan:
    """`backups` are a policy's completed backups, in any order."""
    newest_first = sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True)
    plan = RetentionPlan()

    def keep(backup: Dated, reason: str) -> None:
        plan.keep.setdefault(backup.id, []).append(reason)

    if newest_first:
        keep(newest_first[0], "newest")
    for backup in newest_first[: retention.keep_last or 0]:
        keep(backup, "last")
    if retention.days is not None:
        for backup in newest_first:
            if backup.created_at > now - timedelta(days=retention.days):
                keep(backup, "days")
    counts = {
        "daily": retention.keep_daily,
        "weekly": retention.keep_weekly,
        "monthly": retention.keep_monthly,
        "yearly": retention.keep_yearly,
    }
    for rule, count in counts.items():
        seen: set[tuple[int, ...]] = set()
        for backup in newest_first:
            if len(seen) >= (count or 0):
                break
            bucket = _BUCKETS[rule](backup.created_at.astimezone(zone))
            if bucket not in seen:
                seen.add(bucket)
                keep(backup, rule)
    plan.forget = [b.id for b in newest_first if b.id not in plan.keep]
    return plan


def retention_outlook(
    completed: Sequence[Dated], retention: Retention, now: datetime, zone: ZoneInfo
) -> dict[str, str]:
    """For `lifeboat get backups`: what retention does next with each backup."""
    plan = plan_retention(completed, retention, now, zone)
    outlook = {backup_id: "keep (" + ", ".join(reasons) + ")" for backup_id, reasons in plan.keep.items()}
    outlook.update(dict.fromkeys(plan.forget, "forget next"))
    return outlook
