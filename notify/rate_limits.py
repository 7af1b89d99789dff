"""Reply rate limits as pure decisions over a history of sent replies (RELIABILITY.md)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

History = Iterable[tuple[str, str | None, datetime]]  # (sender, fingerprint, sent_at)


@dataclass(frozen=True)
class ReplyLimits:
    per_sender: int = 20
    per_sender_window: timedelta = timedelta(hours=1)
    repeat_window: timedelta = timedelta(days=7)  # identical error replies, once per window


DEFAULT_LIMITS = ReplyLimits()


def sender_key(address: str) -> str:
    """The mailbox a limit counts against: lower-case, without brackets or +tag, so that
    varied tags (VERP, sub-addresses) do not multiply a loop. Store this, query by it."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" if at else domain


def error_fingerprint(reply: str, reasons: Iterable[str]) -> str:
    """What makes two error replies identical: the template and the reasons, not the import
    id or the date that each reply also shows."""
    distinct = sorted({" ".join(reason.split()) for reason in reasons})
    payload = "\n".join([reply, *distinct]).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def history_since(now: datetime, limits: ReplyLimits = DEFAULT_LIMITS) -> datetime:
    """The oldest `sent_at` that can still matter: query the history from here on."""
    return _utc(now) - max(limits.per_sender_window, limits.repeat_window)


def rate_limit_refusal(
    sender: str,
    fingerprint: str | None,
    now: datetime,
    history: History,
    limits: ReplyLimits = DEFAULT_LIMITS,
) -> str | None:
    """None when the reply may go, else why not. `fingerprint` is None for a reply that is
    no error reply (the 7-day rule does not apply); every reply counts towards the hourly
    limit. Naive datetimes are taken as UTC (SQLite gives them back so)."""
    key, now = sender_key(sender), _utc(now)
    recent = 0
    for past_sender, past_fingerprint, sent_at in history:
        if sender_key(past_sender) != key:
            continue
        age = now - _utc(sent_at)  # negative (clock skew) counts as recent: err on silence
        repeated = fingerprint is not None and past_fingerprint == fingerprint
        if repeated and age < limits.repeat_window:
            return f"the same error reply went to this sender {_duration(age)} ago"
        if age < limits.per_sender_window:
            recent += 1
    if recent >= limits.per_sender:
        window = _duration(limits.per_sender_window)
        return f"{recent} replies to this sender in the last {window} (limit {limits.per_sender})"
    return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
