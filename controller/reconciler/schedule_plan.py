"""When a policy's next backup is due. The next run is kept in status.nextRunAt, so that a
controller that was down finds the runs it missed: it makes one catch-up run (the latest
missed time, within CATCH_UP_DEADLINE), never a burst."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.resources.schedule import Schedule

CATCH_UP_DEADLINE = timedelta(hours=24)


@dataclass(frozen=True)
class SchedulePlan:
    run_now: bool
    next_run_at: datetime | None  # what status.nextRunAt should say


def next_run_after(schedule: Schedule, after: datetime) -> datetime:
    return schedule.expression().next_after(after, schedule.zone())


def plan_schedule(
    schedule: Schedule | None,
    suspended: bool,
    recorded_next: datetime | None,
    spec_changed: bool,
    last_started: datetime | None,
    now: datetime,
) -> SchedulePlan:
    """`recorded_next`: status.nextRunAt as written; `spec_changed`: the spec is not the one
    that status describes (a new or edited schedule starts from now); `last_started`: when
    the policy's latest backup started (a run that happened but whose status write was lost
    by a crash is not run again)."""
    if schedule is None or suspended:
        return SchedulePlan(False, None)
    if recorded_next is None or spec_changed:
        return SchedulePlan(False, next_run_after(schedule, now))
    if recorded_next > now:
        return SchedulePlan(False, recorded_next)
    if last_started is not None and last_started >= recorded_next:
        return SchedulePlan(False, next_run_after(schedule, max(now, last_started)))
    if now - recorded_next > CATCH_UP_DEADLINE:
        return SchedulePlan(False, next_run_after(schedule, now))  # too late to catch up: wait for the next
    return SchedulePlan(True, next_run_after(schedule, now))
