"""When something runs: a cron expression or the simple form, in a time zone.

Used by BackupPolicy.spec.schedule and BackupStorage.spec.maintenance. The YAML may give a
bare string (cron, UTC) or an object; both become a `Schedule`.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from controller.resources.cron import CronError, CronExpression
from controller.resources.meta import Model

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_DURATION_UNITS = (timedelta(weeks=1), timedelta(days=1), timedelta(hours=1), timedelta(minutes=1))


def parse_duration(text: str) -> timedelta:
    """ "26h", "90m", "1d12h", "2w": weeks, days, hours and minutes, largest first."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f'expected a duration such as "26h", "90m" or "1d12h", got {text!r}')
    total = sum((unit * int(n) for unit, n in zip(_DURATION_UNITS, match.groups(), strict=True) if n), timedelta())
    if total <= timedelta():
        raise ValueError(f"expected a duration longer than zero, got {text!r}")
    return total


_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class Frequency(StrEnum):
    DAILY = "daily"  # every day at `time`
    WEEKLY = "weekly"  # every week on `dayOfWeek` at `time`
    MONTHLY = "monthly"  # every month on `dayOfMonth` (its last day if shorter) at `time`


class Schedule(Model):
    cron: str | None = Field(default=None, description="Five-field cron expression or macro (@daily).")
    frequency: Frequency | None = Field(default=None, description="The simple form: daily, weekly, monthly.")
    time: str | None = Field(default=None, description='Simple form: wall-clock time "HH:MM" (24h).')
    day_of_week: str | None = Field(default=None, description="Simple form, weekly: monday..sunday.")
    day_of_month: int | None = Field(
        default=None, description="Simple form, monthly: 1-31; shorter months use their last day."
    )
    timezone: str = Field(default="UTC", description="IANA time zone name, e.g. Europe/Berlin.")

    @model_validator(mode="before")
    @classmethod
    def _bare_string_is_cron(cls, value: Any) -> Any:
        return {"cron": value} if isinstance(value, str) else value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronExpression.parse(value)
            except CronError as err:
                raise ValueError(str(err)) from None
        return value

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = _TIME.match(value)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError(f"expected HH:MM between 00:00 and 23:59, got {value!r}")
        return value

    @field_validator("day_of_week")
    @classmethod
    def _valid_weekday(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in _WEEKDAYS:
            raise ValueError(f"expected one of {', '.join(_WEEKDAYS[1:] + _WEEKDAYS[:1])}, got {value!r}")
        return value.lower() if value else value

    @field_validator("day_of_month")
    @classmethod
    def _valid_day_of_month(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 31:
            raise ValueError(f"expected a day 1-31, got {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA time zone name such as Europe/Berlin, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_form(self) -> Schedule:
        simple = [self.frequency, self.time, self.day_of_week, self.day_of_month]
        if self.cron is not None:
            if any(v is not None for v in simple):
                raise ValueError("give either 'cron' or the simple form (frequency, time, ...), not both")
            return self
        if self.frequency is None or self.time is None:
            raise ValueError("expected 'cron', or 'frequency' and 'time'")
        needs = {Frequency.WEEKLY: "day_of_week", Frequency.MONTHLY: "day_of_month"}
        for frequency, field in needs.items():
            given = getattr(self, field) is not None
            alias = "dayOfWeek" if field == "day_of_week" else "dayOfMonth"
            if self.frequency == frequency and not given:
                raise ValueError(f"frequency {frequency.value} needs '{alias}'")
            if self.frequency != frequency and given:
                raise ValueError(f"'{alias}' only applies to frequency {frequency.value}")
        return self

    def expression(self) -> CronExpression:
        """The schedule as one cron expression (the simple form translated)."""
        if self.cron is not None:
            return CronExpression.parse(self.cron)
        assert self.time is not None  # guaranteed by _one_form
        hour, minute = (int(p) for p in self.time.split(":"))
        if self.frequency == Frequency.DAILY:
            return CronExpression.parse(f"{minute} {hour} * * *")
        if self.frequency == Frequency.WEEKLY:
            assert self.day_of_week is not None
            return CronExpression.parse(f"{minute} {hour} * * {_WEEKDAYS.index(self.day_of_week)}")
        parsed = CronExpression.parse(f"{minute} {hour} {self.day_of_month} * *")
        return dataclasses.replace(parsed, clamp_day_of_month=True)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
