"""Cron expressions: parse the five-field form and find the next matching wall-clock time.

Pure: no clock is read; callers pass the instant to search after. Written here rather than
taken from a library because the rules Lifeboat needs are few and must be exact: Vixie
cron's day-of-month/day-of-week "either" rule, names, steps, macros, and time zones where
wall-clock times vanish (spring forward) or repeat (fall back: the first one runs).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_SEARCH_YEARS = 8  # long enough for "29 February on a Monday"


class CronError(ValueError):
    """The expression is not valid cron; the message names the field and the bad part."""


@dataclass(frozen=True)
class CronExpression:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # 0 = Sunday
    dom_restricted: bool
    dow_restricted: bool
    clamp_day_of_month: bool = False  # a day past the month's end means its last day

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        expanded = _MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != 5:
            raise CronError(
                f"expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
                f"like @daily, got {len(parts)} in {text!r}"
            )
        sets = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        dow = frozenset(0 if d == 7 else d for d in sets[4])  # 7 is Sunday too
        return cls(
            minutes=frozenset(sets[0]),
            hours=frozenset(sets[1]),
            days_of_month=frozenset(sets[2]),
            months=frozenset(sets[3]),
            days_of_week=dow,
            dom_restricted=not parts[2].startswith("*"),
            dow_restricted=not parts[4].startswith("*"),
        )

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        if self.clamp_day_of_month:
            last = calendar.monthrange(year, month)[1]
            dom_ok = day in {min(d, last) for d in self.days_of_month}
        else:
            dom_ok = day in self.days_of_month
        weekday = (calendar.weekday(year, month, day) + 1) % 7
        dow_ok = weekday in self.days_of_week
        if self.dom_restricted and self.dow_restricted:
            return dom_ok or dow_ok
        return dom_ok and dow_ok

    def next_after(self, after: datetime, timezone: ZoneInfo) -> datetime:
        """The first matching instant strictly after `after` (aware), as an aware datetime."""
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        local = after.astimezone(timezone).replace(tzinfo=None, second=0, microsecond=0)
        local += timedelta(minutes=1)
        limit = local.year + _SEARCH_YEARS
        while local.year <= limit:
            if local.month not in self.months:
                local = _first_of_next_month(local)
            elif not self._day_matches(local.year, local.month, local.day):
                local = datetime(local.year, local.month, local.day) + timedelta(days=1)
            elif local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
            elif local.minute not in self.minutes:
                local += timedelta(minutes=1)
            else:
                candidate = local.replace(tzinfo=timezone)
                exists = candidate.astimezone(UTC).astimezone(timezone).replace(tzinfo=None) == local
                if exists and candidate > after:
                    return candidate
                local += timedelta(minutes=1)
        raise CronError("the expression never matches a real date")


def _first_of_next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return datetime(moment.year + 1, 1, 1)
    return datetime(moment.year, moment.month + 1, 1)


def _parse_value(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    lowered = token.lower()
    if lowered in names:
        return names[lowered]
    if not token.isdigit():
        raise CronError(f"{field}: expected a number {low}-{high}, got {token!r}")
    value = int(token)
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _parse_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: expected a positive step after '/', got {step_text!r}")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start = _parse_value(first, low, high, names, field)
            end = _parse_value(last, low, high, names, field)
            if start > end:
                raise CronError(f"{field}: range {body!r} runs backwards")
        else:
            start = _parse_value(body, low, high, names, field)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values
