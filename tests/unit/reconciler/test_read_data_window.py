"""The share of a rolling read-data cycle each check reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.reconciler.storages import read_data_window

MIDNIGHT = datetime(2026, 11, 24, tzinfo=UTC)


def test_the_first_check_and_one_after_a_whole_cycle_read_everything() -> None:
    assert read_data_window(1, None, MIDNIGHT) == ((0.0, 1.0), True)
    assert read_data_window(2, MIDNIGHT, MIDNIGHT + timedelta(days=2)) == ((0.0, 1.0), True)


def test_a_check_reads_from_where_the_last_one_stopped() -> None:
    (start, end), completes = read_data_window(1, MIDNIGHT + timedelta(hours=6), MIDNIGHT + timedelta(hours=12))
    assert (start, end, completes) == (pytest.approx(0.25), pytest.approx(0.5), False)


def test_passing_the_cycles_end_wraps_and_completes_it() -> None:
    (start, end), completes = read_data_window(1, MIDNIGHT - timedelta(hours=6), MIDNIGHT + timedelta(hours=3))
    assert (start, end, completes) == (pytest.approx(0.75), pytest.approx(0.125), True)
