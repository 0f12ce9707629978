"""Cron parsing and next-run times, including time zones and DST edges."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from controller.resources.cron import CronError, CronExpression

BERLIN = ZoneInfo("Europe/Berlin")


UTC_ZONE = ZoneInfo("UTC")


def next_runs(expression: str, after: datetime, zone: ZoneInfo = UTC_ZONE, count: int = 3) -> list[str]:
    cron = CronExpression.parse(expression)
    runs = []
    for _ in range(count):
        after = cron.next_after(after, zone)
        runs.append(after.astimezone(UTC).strftime("%Y-%m-%d %H:%M"))
    return runs


def test_every_minute_is_strictly_after() -> None:
    start = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert next_runs("* * * * *", start) == ["2026-01-01 10:01", "2026-01-01 10:02", "2026-01-01 10:03"]


def test_steps_ranges_lists_and_names() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    assert next_runs("*/20 9-10 * * mon,wed", start, count=4) == [
        "2026-01-05 09:00",
        "2026-01-05 09:20",
        "2026-01-05 09:40",
        "2026-01-05 10:00",
    ]
    assert next_runs("0 0 1 feb,aug *", start, count=2) == ["2026-02-01 00:00", "2026-08-01 00:00"]


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # Vixie cron: the 13th of the month OR any Friday.
    start = datetime(2026, 3, 1, tzinfo=UTC)  # a Sunday
    assert next_runs("0 0 13 * fri", start, count=3) == ["2026-03-06 00:00", "2026-03-13 00:00", "2026-03-20 00:00"]


def test_sunday_as_seven_and_macros() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
    assert next_runs("0 3 * * 7", start, count=1) == ["2026-03-08 03:00"]
    assert next_runs("@weekly", start, count=1) == ["2026-03-08 00:00"]
    assert next_runs("@hourly", start, count=2) == ["2026-03-02 01:00", "2026-03-02 02:00"]


def test_timezone_wall_clock() -> None:
    start = datetime(2026, 1, 10, tzinfo=UTC)
    assert next_runs("30 2 * * *", start, BERLIN, count=1) == ["2026-01-10 01:30"]  # CET = UTC+1
    start = datetime(2026, 7, 10, tzinfo=UTC)
    assert next_runs("30 2 * * *", start, BERLIN, count=1) == ["2026-07-10 00:30"]  # CEST = UTC+2


def test_spring_forward_skips_the_missing_hour() -> None:
    # 2026-03-29 02:30 does not exist in Berlin; the run happens the next day.
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert next_runs("30 2 * * *", start, BERLIN, count=2) == ["2026-03-30 00:30", "2026-03-31 00:30"]


def test_fall_back_runs_once() -> None:
    # 02:30 happens twice on 2026-10-25 in Berlin; only the first one runs.
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    assert next_runs("30 2 * * *", start, BERLIN, count=2) == ["2026-10-25 00:30", "2026-10-26 01:30"]


def test_february_29th_is_found_years_ahead() -> None:
    assert next_runs("0 0 29 2 *", datetime(2026, 1, 1, tzinfo=UTC), count=1) == ["2028-02-29 00:00"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour: 24 is out of range 0-23"),
        ("* * 32 * *", "day of month: 32 is out of range 1-31"),
        ("* * * 13 *", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day of week: 8 is out of range 0-7"),
        ("*/0 * * * *", "positive step"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "expected a number"),
    ],
)
def test_invalid_expressions_name_the_field(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        CronExpression.parse(text)


def test_never_matching_expression_is_an_error() -> None:
    with pytest.raises(CronError, match="never matches"):
        CronExpression.parse("0 0 31 2 *").next_after(datetime(2026, 1, 1, tzinfo=UTC), ZoneInfo("UTC"))
