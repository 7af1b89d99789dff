"""Ages as ops write them (`90m`, `4h`, `2d`), for the queue's "older than" filter in the
command line and the console alike.

Standard library only: `ingest.cli` reads `--older-than` with it and must stay light."""

from __future__ import annotations

import re
from datetime import timedelta

_AGE = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> timedelta:
    """`90m` is ninety minutes; raises ValueError for anything else than digits and m, h or d."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age like 90m, 4h or 2d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})
