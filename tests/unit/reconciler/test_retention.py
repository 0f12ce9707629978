"""Retention rules: each rule alone, combined, the time zone, and invariants under hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.reconciler.retention import Dated, plan_retention
from controller.resources.backup_policy import Retention

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def hourly(count: int, start: datetime = NOW) -> list[Dated]:
    """A backup every 6 hours going back from `start`: ids b0 (newest), b1, ..."""
    return [Dated(f"b{i}", start - timedelta(hours=6 * i)) for i in range(count)]


def test_keep_last() -> None:
    plan = plan_retention(hourly(5), Retention(keep_last=2), NOW, UTC_ZONE)
    assert set(plan.keep) == {"b0", "b1"} and plan.forget == ["b2", "b3", "b4"]


def test_keep_daily_keeps_the_newest_of_each_recent_day() -> None:
    backups = hourly(12)  # 12:00, 06:00, 00:00 of Nov 24; 18:00 ... of Nov 23, 22, ...
    plan = plan_retention(backups, Retention(keep_daily=3), NOW, UTC_ZONE)
    kept = sorted(plan.keep, key=lambda i: int(i[1:]))
    assert kept == ["b0", "b3", "b7"]  # newest of Nov 24, 23 and 22


def test_days_keeps_everything_younger() -> None:
    plan = plan_retention(hourly(12), Retention(days=1), NOW, UTC_ZONE)
    assert set(plan.keep) == {"b0", "b1", "b2", "b3"}


def test_the_newest_backup_is_always_kept() -> None:
    old = [Dated("old", NOW - timedelta(days=90))]
    plan = plan_retention(old, Retention(days=7), NOW, UTC_ZONE)
    assert plan.keep == {"old": ["newest"]} and plan.forget == []


def test_days_are_counted_in_the_policys_zone() -> None:
    # 23:30 UTC on Nov 23 is already Nov 24 in Berlin: one Berlin day holds both backups.
    backups = [
        Dated("late", datetime(2026, 11, 23, 23, 30, tzinfo=UTC)),
        Dated("early", datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),
    ]
    in_utc = plan_retention(backups, Retention(keep_daily=2), NOW, UTC_ZONE)
    in_berlin = plan_retention(backups, Retention(keep_daily=2), NOW, ZoneInfo("Europe/Berlin"))
    assert set(in_utc.keep) == {"late", "early"}
    assert set(in_berlin.keep) == {"early"} and in_berlin.forget == ["late"]


def test_weekly_monthly_yearly() -> None:
    backups = [Dated(f"d{i}", NOW - timedelta(days=i)) for i in range(800)]
    plan = plan_retention(backups, Retention(keep_weekly=2, keep_monthly=2, keep_yearly=3), NOW, UTC_ZONE)
    weekly = [i for i, reasons in plan.keep.items() if "weekly" in reasons]
    monthly = [i for i, reasons in plan.keep.items() if "monthly" in reasons]
    yearly = [i for i, reasons in plan.keep.items() if "yearly" in reasons]
    assert weekly == ["d0", "d2"]  # Tue Nov 24; Mon Nov 23 is the same ISO week, Sun Nov 22 the one before
    assert monthly == ["d0", "d24"]  # Nov 24, Oct 31
    assert yearly == ["d0", "d328", "d693"]  # 2026-11-24, 2025-12-31, 2024-12-31
    assert set(plan.keep) == {"d0", "d2", "d24", "d328", "d693"}


@settings(max_examples=200)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=24 * 400), min_size=0, max_size=40, unique=True),
    keep_last=st.none() | st.integers(0, 5),
    keep_daily=st.none() | st.integers(0, 5),
    days=st.none() | st.integers(0, 30),
)
def test_invariants(offsets: list[int], keep_last: int | None, keep_daily: int | None, days: int | None) -> None:
    if keep_last is None and keep_daily is None and days is None:
        keep_last = 0
    backups = [Dated(f"h{h}", NOW - timedelta(hours=h)) for h in offsets]
    plan = plan_retention(backups, Retention(keep_last=keep_last, keep_daily=keep_daily, days=days), NOW, UTC_ZONE)
    assert set(plan.keep) | set(plan.forget) == {b.id for b in backups}
    assert not set(plan.keep) & set(plan.forget)
    if backups:
        assert f"h{min(offsets)}" in plan.keep  # the newest survives
    assert len(plan.keep) <= 1 + (keep_last or 0) + (keep_daily or 0) + sum(
        1 for h in offsets if days is not None and h < days * 24
    )
