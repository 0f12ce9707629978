"""What a Notifier is sent (its events, selector and labels), when a policy is overdue, and
the one-line refusals of a Notifier written wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from controller.notify.selection import selects
from controller.reconciler.overdue import overdue_at
from controller.resources.backup_policy import BackupPolicy
from controller.resources.meta import UNION_TAGS
from controller.resources.notifier import Notifier, NotifierSpec
from controller.resources.schedule import parse_duration
from tests.builders import a_policy
from tests.support.messages import BACKUP_FAILED as FAILED


def spec(**fields: Any) -> NotifierSpec:
    return NotifierSpec.model_validate({"webhook": {"url": "https://hooks.example.com/x"}, **fields})


def test_the_default_events_are_the_warnings_and_repeats_are_never_messages() -> None:
    default = spec()
    assert selects(default, FAILED, {})
    assert selects(default, replace(FAILED, state="resolved"), {})
    assert not selects(default, replace(FAILED, state="repeat"), {})  # still failing: nothing new
    assert not selects(default, replace(FAILED, event="BackupSucceeded", state="info"), {})
    assert selects(spec(events=["BackupSucceeded"]), replace(FAILED, event="BackupSucceeded", state="info"), {})


@pytest.mark.parametrize(
    ("selector", "chosen"),
    [
        ({"policies": ["blog-*"]}, True),
        ({"policies": ["shop-*"]}, False),
        ({"apps": ["blog"], "storages": ["off*"]}, True),
        ({"apps": ["blog"], "storages": ["local"]}, False),
        ({"labels": {"team": "web"}}, True),
        ({"labels": {"team": "db"}}, False),
    ],
)
def test_each_field_of_the_selector_must_match(selector: dict[str, Any], chosen: bool) -> None:
    assert selects(spec(selector=selector), FAILED, {"team": "web"}) is chosen


def test_a_notice_without_the_selected_field_is_not_chosen() -> None:
    storage_notice = replace(
        FAILED, event="StorageUnreachable", kind="BackupStorage", name="offsite", app="", policy=""
    )
    assert not selects(spec(selector={"apps": ["*"]}), storage_notice, {})
    assert selects(spec(selector={"storages": ["offsite"]}), storage_notice, {})


def test_healthchecks_is_pinged_for_every_backup_run_of_a_policy_and_nothing_else() -> None:
    pings = NotifierSpec.model_validate({"healthchecks": {"url": "https://hc-ping.com/key/{policy}"}})
    assert selects(pings, replace(FAILED, state="repeat"), {})  # each failed run pings /fail
    assert selects(pings, replace(FAILED, event="BackupStarted", state="info"), {})
    assert not selects(pings, replace(FAILED, state="resolved"), {})  # the success itself pings
    assert not selects(pings, replace(FAILED, event="DrillFailed"), {})
    assert not selects(pings, replace(FAILED, policy=""), {})  # an app backup outside any policy


def test_durations() -> None:
    assert parse_duration("26h") == timedelta(hours=26)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    assert parse_duration("2w90m") == timedelta(weeks=2, minutes=90)
    for wrong in ("", "0m", "12", "3 days", "1h2d"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(wrong)


def test_overdue_is_the_next_run_after_the_last_success_plus_half_an_interval_or_the_rpo() -> None:
    daily = BackupPolicy.model_validate(a_policy(spec={"schedule": "0 2 * * *"}))
    success = datetime(2026, 12, 1, 2, 0, 40, tzinfo=UTC)
    assert overdue_at(daily, success, None) == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert overdue_at(daily, None, success) == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # never succeeded
    assert overdue_at(daily, None, None) is None  # never ran: nothing to measure from
    minutely = BackupPolicy.model_validate(a_policy(spec={"schedule": "* * * * *"}))
    assert overdue_at(minutely, success, None) == datetime(2026, 12, 1, 2, 6, tzinfo=UTC)  # five minutes at least
    rpo = BackupPolicy.model_validate(a_policy(spec={"schedule": "0 2 * * *", "rpo": "26h"}))
    assert overdue_at(rpo, success, None) == success + timedelta(hours=26)
    suspended = BackupPolicy.model_validate(a_policy(spec={"schedule": "0 2 * * *", "suspend": True}))
    assert overdue_at(suspended, success, None) is None


@pytest.mark.parametrize(
    ("spec_fields", "field", "message"),
    [
        ({}, "spec", "expected exactly one of webhook, email, healthchecks, apprise; got none"),
        ({"webhook": {"url": "hooks.example.com"}}, "spec.webhook.url", "expected a URL with its scheme"),
        ({"webhook": {"url": "https://x", "format": "irc"}}, "spec.webhook.format", "Input should be"),
        ({"webhook": {"url": {"env": "lower case"}}}, "spec.webhook.url", "env: expected an environment variable"),
        ({"email": {"host": "h", "from": "a@b", "to": []}}, "spec.email.to", "at least 1 item"),
        ({"email": {"host": "h", "from": "a@b", "to": ["c@d"], "username": "u"}}, "spec.email", "both 'username'"),
        ({"apprise": {"url": "tgram://x"}, "events": ["BackupExploded"]}, "spec.events.0", "Input should be"),
        ({"apprise": {"url": "tgram://x"}, "events": []}, "spec.events", "expected at least one event"),
    ],
)
def test_a_notifier_written_wrong_is_refused_naming_the_field(
    spec_fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Notifier.model_validate({"metadata": {"name": "ops"}, "spec": spec_fields})
    error = caught.value.errors()[0]
    assert ".".join(str(p) for p in error["loc"] if p not in UNION_TAGS) == field
    assert message in error["msg"]
