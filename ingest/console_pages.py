"""What the console's pages show: the queue page and one import's page, as template contexts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from ingest.ages import parse_age
from ingest.sla import sla_due
from ingest.views import import_detail, queue_entry
from store.documents import attachments_of_import, documents_of_import
from store.models import Import
from store.outbox import replies_of_import
from store.queue import get_import
from store.queue_page import (
    QueueFilter,
    account_names,
    matching,
    page_of_imports,
    status_counts,
)
from store.states import FINAL, NEEDS_A_PERSON, Status

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
AGES = ("", "1h", "4h", "1d", "3d", "7d")  # the age filter's choices: "older than"
WARN_AT = 0.75  # the share of the SLA time after which a row turns amber (issue 6: 75 %)

# an import's whole conversation, oldest first (ingest.threads.conversation)
ThreadView = Callable[[Session, int], Sequence[Mapping[str, Any]]]


class BadQuery(ValueError):
    """A query parameter the console does not understand; the message says which."""


@dataclass(frozen=True)
class QueueQuery:
    """The queue page's URL parameters, checked."""

    status: str = ""
    account: str = ""
    age: str = ""
    size: int = PAGE_SIZE
    before: int | None = None
    after: int | None = None

    @classmethod
    def parse(cls, params: dict[str, str]) -> QueueQuery:
        status = params.get("status", "")
        if status not in {"", "open", *(s.value for s in Status)}:
            raise BadQuery(f"status {status!r} is not one of the queue's statuses")
        age = params.get("age", "")
        if age:
            try:
                parse_age(age)
            except ValueError as exc:
                raise BadQuery(str(exc)) from exc
        return cls(
            status,
            params.get("account", "").strip()[:200],
            age,
            min(_number(params, "size") or PAGE_SIZE, MAX_PAGE_SIZE),
            _number(params, "before"),
            _number(params, "after"),
        )

    def wanted(self, now: datetime) -> QueueFilter:
        older_than = now - parse_age(self.age) if self.age else None
        return QueueFilter(self.status or None, self.account or None, older_than)

    def url(self, **changes: Any) -> str:
        query = replace(self, **changes)
        params = {
            "status": query.status,
            "account": query.account,
            "age": query.age,
            "size": "" if query.size == PAGE_SIZE else str(query.size),
            "before": "" if query.before is None else str(query.before),
            "after": "" if query.after is None else str(query.after),
        }
        encoded = urlencode({k: v for k, v in params.items() if v})
        return f"/?{encoded}" if encoded else "/"


def queue_context(
    session: Session, query: QueueQuery, calendar: str, now: datetime
) -> dict[str, Any]:
    wanted = query.wanted(now)
    page = page_of_imports(session, wanted, query.size, query.before, query.after)
    counts = status_counts(session, wanted)
    first_page = query.url(before=None, after=None)
    return {
        "query": query,
        "statuses": [s.value for s in Status],
        "ages": AGES,
        "accounts": account_names(session),
        "counts": [
            {
                "status": status,
                "count": count,
                "url": query.url(status=status, before=None, after=None),
                "classes": " ".join(
                    name
                    for name, wanted in (
                        ("selected", status == query.status),
                        ("attention", Status(status) in NEEDS_A_PERSON and count > 0),
                    )
                    if wanted
                ),
            }
            for status, count in counts.items()
        ],
        "total": sum(counts.values()),
        "matching": matching(session, wanted),
        "rows": [queue_row(i, calendar, now) for i in page.imports],
        "newer_url": query.url(after=page.newer, before=None) if page.newer else None,
        "older_url": query.url(before=page.older, after=None) if page.older else None,
        "first_url": first_page if (query.before or query.after) else None,
        "now": stamp(now),
    }


def queue_row(import_: Import, calendar: str, now: datetime) -> dict[str, Any]:
    row = queue_entry(import_, calendar)
    row["received"] = stamp(import_.received_at)
    row.update(sla_state(import_.received_at, Status(import_.status), calendar, now))
    return row


def sla_state(
    received_at: datetime, status: Status, calendar: str, now: datetime
) -> dict[str, str]:
    """The SLA time left as text and a class: `ok`, `warn` once 75 % of the time is used,
    `late` past due, `done` when answered (the clock has stopped)."""
    due = sla_due(received_at, calendar)
    if status in FINAL:
        return {"sla_left": "answered", "sla_class": "done", "sla_due_text": stamp(due)}
    left = (due - now).total_seconds()
    span = max((due - received_at).total_seconds(), 1.0)
    used = 1 - left / span
    css = "late" if left <= 0 else "warn" if used >= WARN_AT else "ok"
    text = duration(abs(left))
    return {
        "sla_left": f"late by {text}" if left <= 0 else f"{text} left",
        "sla_class": css,
        "sla_due_text": stamp(due),
    }


def import_context(
    session: Session,
    import_id: int,
    thread: ThreadView | None,
    calendar: str,
    now: datetime,
) -> dict[str, Any] | None:
    """`show`'s data for one import, its thread when there is a thread view, and the SLA
    state; None when there is no such import."""
    import_ = get_import(session, import_id)
    if import_ is None:
        return None
    detail = import_detail(
        import_,
        calendar,
        attachments_of_import(session, import_id),
        documents_of_import(session, import_id),
        replies_of_import(session, import_id),
    )
    return {
        "d": detail,
        "received": stamp(import_.received_at),
        "thread": thread_rows(thread(session, import_id)) if thread else [],
        **sla_state(import_.received_at, Status(import_.status), calendar, now),
    }


def thread_rows(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation's entries (inbound mail, replies, forwards) as table rows."""
    return [
        {
            "at": stamp(e["at"]) if isinstance(e.get("at"), datetime) else str(e.get("at", "")),
            "kind": e.get("kind") or "",
            "import_id": e.get("import_id"),
            "who": e.get("from") or e.get("to") or "",
            "what": e.get("subject") or e.get("note") or "",
            "status": e.get("status") or "",
        }
        for e in entries
    ]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def when(iso_moment: str) -> str:
    """`2026-11-02T09:30:12.345678Z` as `2026-11-02 09:30:12`: the views' ISO text, readable."""
    return iso_moment[:19].replace("T", " ")


def duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h{minutes:02d}m" if days else f"{hours}h{minutes:02d}m"


def _number(params: dict[str, str], name: str) -> int | None:
    text = params.get(name, "")
    if not text:
        return None
    if not text.isdigit() or len(text) > 12 or int(text) == 0:
        raise BadQuery(f"{name} {text!r} is not a positive number")
    return int(text)
