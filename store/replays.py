"""Which imports `stax-import replay` reads again: chosen by status, received day and id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Import


@dataclass(frozen=True)
class ReplaySelection:
    """The selectors combine: every one given must hold. Days are received days, UTC."""

    statuses: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    ids: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.statuses or self.since or self.until or self.ids)


def selected_imports(session: Session, selection: ReplaySelection) -> list[int]:
    """The ids of the selected imports, oldest first."""
    query = select(Import.id).order_by(Import.received_at, Import.id)
    if selection.statuses:
        query = query.where(Import.status.in_(selection.statuses))
    if selection.since is not None:
        query = query.where(Import.received_at >= _start_of(selection.since))
    if selection.until is not None:  # inclusive: up to the start of the day after
        query = query.where(Import.received_at < _start_of(selection.until + timedelta(days=1)))
    if selection.ids:
        query = query.where(Import.id.in_(selection.ids))
    return list(session.scalars(query).all())


def unknown_ids(session: Session, ids: Collection[int]) -> list[int]:
    known = set(session.scalars(select(Import.id).where(Import.id.in_(list(ids)))).all())
    return sorted(set(ids) - known)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)
