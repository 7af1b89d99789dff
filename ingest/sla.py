"""The SLA clock: an import is due one business day after it arrived."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

# The business day is counted in the calendar country's own time zone.
_ZONES = {
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "GB": "Europe/London",
    "UK": "Europe/London",
    "IE": "Europe/Dublin",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "CH": "Europe/Zurich",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "SG": "Asia/Singapore",
}


@lru_cache(maxsize=16)
def _calendar(country: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country)


def is_business_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and day not in _calendar(country)


def next_business_day(day: date, country: str) -> date:
    day += timedelta(days=1)
    while not is_business_day(day, country):
        day += timedelta(days=1)
    return day


def sla_due(received_at: datetime, country: str) -> datetime:
    """Same time on the next business day; mail that arrives on a non-business day starts
    the clock at the start of the next business day, so it is due at the start of the one
    after."""
    zone = ZoneInfo(_ZONES.get(country.upper(), "UTC"))
    local = received_at.astimezone(zone)
    if is_business_day(local.date(), country):
        due_day, due_time = next_business_day(local.date(), country), local.timetz()
    else:
        start = next_business_day(local.date(), country)
        due_day, due_time = next_business_day(start, country), time(0, tzinfo=zone)
    due = datetime.combine(due_day, due_time.replace(tzinfo=None), tzinfo=zone)
    return due.astimezone(UTC)
