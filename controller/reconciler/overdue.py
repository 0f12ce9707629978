"""The BackupOverdue watchdog: the controller's own check that a policy's backups keep
succeeding, whatever stops them (runs failing, the app busy, a schedule that never fires).
A policy is overdue when its latest successful backup is older than `spec.rpo`, or, without
one, when the schedule's first run after that backup is more than a grace late: half the
schedule's interval there (a daily schedule: 12 hours), five minutes at least."""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.reconciler.schedule_plan import next_run_after
from controller.resources.backup_policy import BackupPolicy
from controller.resources.schedule import parse_duration

SHORTEST_GRACE = timedelta(minutes=5)


def overdue_at(policy: BackupPolicy, last_success: datetime | None, first_attempt: datetime | None) -> datetime | None:
    """When the policy is overdue, counted from its latest success (else its first backup's
    start). None for a policy without schedule, a suspended one, or one that never ran."""
    spec = policy.spec
    reference = last_success or first_attempt
    if spec.schedule is None or spec.suspend or reference is None:
        return None
    if spec.rpo is not None:
        return reference + parse_duration(spec.rpo)
    expected = next_run_after(spec.schedule, reference)
    following = next_run_after(spec.schedule, expected)
    return expected + max((following - expected) / 2, SHORTEST_GRACE)
