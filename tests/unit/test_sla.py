"""The SLA clock: one business day in the configured calendar."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.sla import sla_due


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_tuesday_arrival_is_due_on_wednesday_at_the_same_time() -> None:
    assert sla_due(utc(2026, 11, 17, 9, 0), "FR") == utc(2026, 11, 18, 9, 0)


def test_a_friday_arrival_is_due_on_monday() -> None:
    assert sla_due(utc(2026, 11, 20, 15, 0), "FR") == utc(2026, 11, 23, 15, 0)


def test_a_sunday_arrival_starts_the_clock_on_monday_morning() -> None:
    # Sunday 22 Nov 2026; clock starts Monday 00:00 Paris, due Tuesday 00:00 Paris (23:00 UTC)
    assert sla_due(utc(2026, 11, 22, 12, 0), "FR") == utc(2026, 11, 23, 23, 0)


def test_a_french_holiday_is_not_a_business_day() -> None:
    # Wednesday 11 Nov 2026 is Armistice Day in France, not in the United States
    assert sla_due(utc(2026, 11, 10, 10, 0), "FR") == utc(2026, 11, 12, 10, 0)
    assert sla_due(utc(2026, 11, 10, 15, 0), "US") == utc(2026, 11, 12, 15, 0)  # Veterans Day


def test_us_thanksgiving_is_skipped() -> None:
    assert sla_due(utc(2026, 11, 25, 15, 0), "US") == utc(2026, 11, 27, 15, 0)
