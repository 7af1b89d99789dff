"""One page of the ingest queue for the console: filters, status counts, keyset pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from store.models import Account, Import
from store.states import Status

_Columns = TypeVarTuple("_Columns")

OPEN = (Status.RECEIVED, Status.PROCESSING, Status.HELD, Status.QUARANTINED)


@dataclass(frozen=True)
class QueueFilter:
    """What ops narrowed the queue to; `status` "open" means every unfinished status."""

    status: str | None = None
    account: str | None = None
    received_before: datetime | None = None  # the age filter: older than this


@dataclass(frozen=True)
class QueuePage:
    imports: list[Import]  # newest first
    newer: int | None  # the id to page back from (`after=`), None on the first page
    older: int | None  # the id to page on from (`before=`), None on the last page


def page_of_imports(
    session: Session,
    wanted: QueueFilter,
    size: int,
    before: int | None = None,
    after: int | None = None,
) -> QueuePage:
    """Keyset pages on the primary key, newest first: each page costs the same however deep
    it is, and rows arriving meanwhile do not shift the page being read."""
    query = filtered(select(Import), wanted).options(
        selectinload(Import.inbound), selectinload(Import.account)
    )
    if after is not None:  # going back towards the newest: read upwards, then turn round
        rows = list(
            session.scalars(
                query.where(Import.id > after).order_by(Import.id.asc()).limit(size + 1)
            ).all()
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return QueuePage(rows, rows[0].id if rows and more_newer else None, _last_id(rows))
    if before is not None:
        query = query.where(Import.id < before)
    rows = list(session.scalars(query.order_by(Import.id.desc()).limit(size + 1)).all())
    more_older = len(rows) > size
    rows = rows[:size]
    newer = rows[0].id if rows and before is not None else None
    return QueuePage(rows, newer, rows[-1].id if rows and more_older else None)


def status_counts(session: Session, wanted: QueueFilter) -> dict[str, int]:
    """Imports per status under the account and age filters (not the status one, so that
    each count is what clicking it shows)."""
    any_status = QueueFilter(None, wanted.account, wanted.received_before)
    query = filtered(select(Import.status, func.count()), any_status).group_by(Import.status)
    counts = {s.value: 0 for s in Status}
    counts.update({status: count for status, count in session.execute(query)})
    return counts


def matching(session: Session, wanted: QueueFilter) -> int:
    return session.scalar(filtered(select(func.count(Import.id)), wanted)) or 0


def account_names(session: Session, limit: int = 1000) -> list[str]:
    return list(session.scalars(select(Account.name).order_by(Account.name).limit(limit)).all())


def filtered(query: Select[*_Columns], wanted: QueueFilter) -> Select[*_Columns]:
    """`query` narrowed to what `wanted` asks for (the console's page and `stax-import queue`)."""
    if wanted.status == "open":
        query = query.where(Import.status.in_(_values(OPEN)))
    elif wanted.status:
        query = query.where(Import.status == wanted.status)
    if wanted.account:
        account_id = select(Account.id).where(Account.name == wanted.account).scalar_subquery()
        query = query.where(Import.account_id == account_id)
    if wanted.received_before is not None:
        query = query.where(Import.received_at < wanted.received_before)
    return query


def _values(statuses: Sequence[Status]) -> list[str]:
    return [s.value for s in statuses]


def _last_id(rows: list[Import]) -> int | None:
    return rows[-1].id if rows else None
