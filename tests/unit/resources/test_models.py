"""Validation of the kinds: every rejection names the field and what was expected."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from controller.resources.backup_policy import BackupPolicy
from controller.resources.backup_storage import BackupStorage
from controller.resources.meta import Condition, ConditionStatus, find_condition, set_condition
from controller.resources.restore import Restore
from tests.builders import a_policy, a_restore, a_storage


def error_of(model: type[Any], data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    first = caught.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]


def test_examples_of_each_kind_validate() -> None:
    assert BackupStorage.model_validate(a_storage()).spec.local is not None
    assert BackupPolicy.model_validate(a_policy()).spec.app == "wordpress001"
    assert Restore.model_validate(a_restore()).spec.safety_backup is True


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        ({"frequency": "daily", "time": "25:00"}, "spec.schedule.time", "expected HH:MM"),
        ({"frequency": "daily", "time": "12:60"}, "spec.schedule.time", "expected HH:MM"),
        (
            {"frequency": "monthly", "time": "01:00", "dayOfMonth": 32},
            "spec.schedule.dayOfMonth",
            "expected a day 1-31",
        ),
        ({"frequency": "monthly", "time": "01:00", "dayOfMonth": 0}, "spec.schedule.dayOfMonth", "expected a day 1-31"),
        ({"frequency": "weekly", "time": "01:00", "dayOfWeek": "funday"}, "spec.schedule.dayOfWeek", "expected one of"),
        ({"frequency": "weekly", "time": "01:00"}, "spec.schedule", "needs 'dayOfWeek'"),
        (
            {"frequency": "daily", "time": "01:00", "dayOfMonth": 3},
            "spec.schedule",
            "only applies to frequency monthly",
        ),
        ({"frequency": "hourly", "time": "01:00"}, "spec.schedule.frequency", "Input should be"),
        ({"cron": "0 2 * * *", "frequency": "daily", "time": "01:00"}, "spec.schedule", "not both"),
        ({"cron": "0 25 * * *"}, "spec.schedule.cron", "hour: 25 is out of range"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "spec.schedule.timezone", "IANA time zone"),
        ("61 * * * *", "spec.schedule.cron", "minute: 61"),
        ({"time": "01:00"}, "spec.schedule", "expected 'cron', or 'frequency' and 'time'"),
    ],
)
def test_schedule_rejections(schedule: Any, field: str, message: str) -> None:
    loc, msg = error_of(BackupPolicy, a_policy(spec={"schedule": schedule}))
    assert loc == field
    assert message in msg


def test_simple_monthly_schedule_uses_last_day_of_short_months() -> None:
    policy = BackupPolicy.model_validate(
        a_policy(spec={"schedule": {"frequency": "monthly", "time": "03:15", "dayOfMonth": 31, "timezone": "UTC"}})
    )
    assert policy.spec.schedule is not None
    expression, zone = policy.spec.schedule.expression(), policy.spec.schedule.zone()
    runs, after = [], datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(3):
        after = expression.next_after(after, zone)
        runs.append(after.strftime("%m-%d %H:%M"))
    assert runs == ["01-31 03:15", "02-28 03:15", "03-31 03:15"]


def test_weekly_simple_schedule_runs_on_its_day() -> None:
    policy = BackupPolicy.model_validate(
        a_policy(spec={"schedule": {"frequency": "weekly", "time": "23:59", "dayOfWeek": "Saturday"}})
    )
    assert policy.spec.schedule is not None
    run = policy.spec.schedule.expression().next_after(datetime(2026, 11, 23, tzinfo=UTC), ZoneInfo("UTC"))
    assert (run.strftime("%A %H:%M"), run.day) == ("Saturday 23:59", 28)


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({}, "at least one rule"),
        ({"keepLast": -1}, "greater than or equal to 0"),
        ({"days": "many"}, "valid integer"),
    ],
)
def test_retention_rejections(retention: dict[str, Any], message: str) -> None:
    loc, msg = error_of(BackupPolicy, a_policy(spec={"retention": retention}))
    assert loc.startswith("spec.retention")
    assert message in msg


def test_retention_zero_is_a_rule() -> None:
    assert BackupPolicy.model_validate(a_policy(spec={"retention": {"keepDaily": 0}})).spec.retention.keep_daily == 0


@pytest.mark.parametrize("name", ["WordPress", "-wp", "wp-", "wp_001", "a" * 64, ""])
def test_names_must_be_dns_labels(name: str) -> None:
    loc, msg = error_of(BackupPolicy, a_policy(metadata={"name": name}))
    assert loc == "metadata.name"
    assert "DNS label" in msg


def test_inline_secret_is_refused() -> None:
    loc, msg = error_of(BackupStorage, a_storage(spec={"encryption": {"passphrase": "hunter2"}}))
    assert loc == "spec.encryption.passphrase"
    assert "inline secret values are not allowed" in msg
    assert "hunter2" not in msg


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({}, "exactly one of 'env' or 'file'"),
        ({"env": "A", "file": "/b"}, "exactly one of 'env' or 'file'"),
        ({"env": "not a name"}, "environment variable name"),
        ({"file": "relative/path"}, "absolute path"),
        ({"value": "x"}, "Extra inputs"),
    ],
)
def test_secret_reference_shapes(ref: dict[str, Any], message: str) -> None:
    _, msg = error_of(BackupStorage, a_storage(spec={"encryption": {"passphrase": ref}}))
    assert message in msg


def test_storage_needs_exactly_one_location() -> None:
    both = a_storage(spec={"s3": {"bucket": "backups"}})
    assert "exactly one of 'local' or 's3'" in error_of(BackupStorage, both)[1]


def test_storage_needs_encryption() -> None:
    data = a_storage()
    del data["spec"]["encryption"]
    assert error_of(BackupStorage, data) == ("spec.encryption", "Field required")


def test_policy_needs_app_or_paths_and_absolute_paths() -> None:
    data = a_policy()
    del data["spec"]["app"]
    assert "expected 'app'" in error_of(BackupPolicy, data)[1]
    loc, msg = error_of(BackupPolicy, a_policy(spec={"paths": ["etc/platform"]}))
    assert (loc, "absolute" in msg) == ("spec.paths", True)


@pytest.mark.parametrize("moment", ["2026-11-20", "2026-11-20T02:00:00", "yesterday", "2026-11-20 02:00"])
def test_point_in_time_must_be_rfc3339_with_offset(moment: str) -> None:
    loc, msg = error_of(Restore, a_restore(spec={"backup": None, "policy": "wp", "pointInTime": moment}))
    assert loc == "spec.pointInTime"
    assert "RFC 3339" in msg


def test_point_in_time_accepts_rfc3339() -> None:
    restore = Restore.model_validate(
        a_restore(spec={"backup": None, "policy": "wp", "pointInTime": "2026-11-20T02:00:00.5+01:00"})
    )
    assert restore.spec.point_in_time == datetime(2026, 11, 20, 1, 0, 0, 500000, tzinfo=UTC)


def test_restore_needs_one_source() -> None:
    assert "exactly one of 'backup'" in error_of(Restore, a_restore(spec={"policy": "wp"}))[1]
    assert (
        "'pointInTime' needs 'policy'" in error_of(Restore, a_restore(spec={"pointInTime": "2026-11-20T02:00:00Z"}))[1]
    )


def test_unknown_field_is_rejected() -> None:
    loc, msg = error_of(BackupPolicy, a_policy(spec={"retension": {"keepLast": 1}}))
    assert (loc, msg) == ("spec.retension", "Extra inputs are not permitted")


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    t0, t1 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    ready = Condition(type="Ready", status=ConditionStatus.TRUE, reason="Reconciled", last_transition_time=t0)
    other = Condition(type="Reconciling", status=ConditionStatus.FALSE, reason="Idle", last_transition_time=t0)
    same = set_condition([ready, other], ready.model_copy(update={"message": "again", "last_transition_time": t1}))
    assert [(c.type, c.last_transition_time, c.message) for c in same] == [
        ("Ready", t0, "again"),  # status unchanged: the transition time stays
        ("Reconciling", t0, ""),
    ]
    flip = Condition(type="Ready", status=ConditionStatus.FALSE, reason="Invalid", last_transition_time=t1)
    assert find_condition(set_condition(same, flip), "Ready") == flip  # status changed: the new time
    assert set_condition([], ready) == [ready]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({}, "expected exactly one of sql, http, file, command; got none"),
        (
            {"file": {"service": "web", "path": "/x"}, "command": {"service": "web", "command": ["true"]}},
            "got file, command",
        ),
        ({"http": {"service": "web", "port": 70000}}, "less than or equal to 65535"),
        ({"command": {"service": "web", "command": []}}, "at least 1 item"),
    ],
)
def test_a_drill_check_is_exactly_one_valid_kind(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BackupPolicy.model_validate(a_policy(spec={"verify": {"checks": [check]}}))


def test_a_drill_check_names_itself_in_results() -> None:
    policy = BackupPolicy.model_validate(
        a_policy(
            spec={
                "verify": {
                    "checks": [
                        {"sql": {"service": "db", "database": "wp", "query": "SELECT 1", "expect": "1"}},
                        {"http": {"service": "web", "port": 80, "path": "/health"}},
                    ]
                }
            }
        )
    )
    assert policy.spec.verify is not None
    assert [c.named for c in policy.spec.verify.checks] == ["sql db/wp: SELECT 1", "http web:80/health"]
    assert policy.spec.verify.checks[1].http is not None and policy.spec.verify.checks[1].http.expect_status == 200
