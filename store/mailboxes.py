"""IMAP mailboxes: where each poller stands, and the ledger of the messages it found there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.db import Database
from store.models import ImapMailbox, ImapMessage, Import
from store.states import Status
from store.types import utcnow

# A message's way through the ledger: found in the folder, stored through the door, then moved
# out of the folder (or vanished from it before that, taken away by someone else).
FOUND, STORED, MOVED, VANISHED = "found", "stored", "moved", "vanished"
IN_FLIGHT = (Status.RECEIVED.value, Status.PROCESSING.value)


@dataclass(frozen=True)
class Position:
    """Where a poller stands in its folder; `reset` when UIDVALIDITY changed just now."""

    uidvalidity: int
    last_uid: int
    reset: bool = False
    previous_uidvalidity: int | None = None


@dataclass(frozen=True)
class Entry:
    """A ledger row still open (found or stored), with its import's status if it has one."""

    id: int
    uid: int
    import_id: int | None
    import_status: Status | None


def _insert(session: Session) -> Any:
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def mailbox_id(db: Database, name: str) -> int:
    """The mailbox's row, created on first sight (two pollers may race to create it)."""
    with db.write() as session:
        session.execute(
            _insert(session)(ImapMailbox)
            .values(name=name, last_uid=0, failures=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return session.scalars(select(ImapMailbox.id).where(ImapMailbox.name == name)).one()


def position(db: Database, mailbox: int, uidvalidity: int, start_after: int) -> Position:
    """Reconcile the folder's UIDVALIDITY with the stored one. First sight: start after
    `start_after` (0 imports what is there). A different UIDVALIDITY: every UID is new again,
    so rescan from the start; the door recognises what it already holds by content."""
    with db.write() as session:
        row = session.get_one(ImapMailbox, mailbox, with_for_update=True)
        if row.uidvalidity == uidvalidity:
            return Position(uidvalidity, row.last_uid)
        previous = row.uidvalidity
        last_uid = start_after if previous is None else 0
        row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, last_uid, utcnow()
        return Position(
            uidvalidity, last_uid, reset=previous is not None, previous_uidvalidity=previous
        )


def record_found(db: Database, mailbox: int, uidvalidity: int, uids: Sequence[int]) -> None:
    """One ledger row per new UID (a row another poller wrote first stays as it is), then move
    the mailbox's last UID forward: every UID up to it now has its row."""
    if not uids:
        return
    now = utcnow()
    rows = [
        {
            "mailbox_id": mailbox,
            "uidvalidity": uidvalidity,
            "uid": uid,
            "status": FOUND,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for uid in uids
    ]
    with db.write() as session:
        statement = _insert(session)(ImapMessage).on_conflict_do_nothing(
            index_elements=["mailbox_id", "uidvalidity", "uid"]
        )
        session.connection().execute(statement, rows)
        session.execute(
            update(ImapMailbox)
            .where(
                ImapMailbox.id == mailbox,
                ImapMailbox.uidvalidity == uidvalidity,
                ImapMailbox.last_uid < max(uids),
            )
            .values(last_uid=max(uids), updated_at=now)
        )


def open_entries(db: Database, mailbox: int, uidvalidity: int, limit: int = 500) -> list[Entry]:
    """The folder's messages not yet moved out of it, oldest UID first."""
    with db.read() as session:
        rows = session.execute(
            select(ImapMessage.id, ImapMessage.uid, ImapMessage.import_id, Import.status)
            .outerjoin(Import, Import.id == ImapMessage.import_id)
            .where(
                ImapMessage.mailbox_id == mailbox,
                ImapMessage.uidvalidity == uidvalidity,
                ImapMessage.status.in_((FOUND, STORED)),
            )
            .order_by(ImapMessage.uid)
            .limit(limit)
        ).all()
    return [Entry(r.id, r.uid, r.import_id, Status(r.status) if r.status else None) for r in rows]


def any_decided(db: Database, mailbox: int, uidvalidity: int) -> bool:
    """Is a stored message's import past its verdict (or quarantined), so it can be moved?"""
    with db.read() as session:
        found = session.scalar(
            select(ImapMessage.id)
            .join(Import, Import.id == ImapMessage.import_id)
            .where(
                ImapMessage.mailbox_id == mailbox,
                ImapMessage.uidvalidity == uidvalidity,
                ImapMessage.status == STORED,
                Import.status.not_in(IN_FLIGHT),
            )
            .limit(1)
        )
    return found is not None


def claim(db: Database, entry: int, status: str, owner: str, lease: timedelta) -> bool:
    """Take a message that is still `status` (found: to store it; stored: to move it): a
    compare-and-set on the row, so two pollers never work on one message at once, nor
    repeat what the other has just done. A claim whose holder died runs out with its lease."""
    now = utcnow()
    with db.write() as session:
        result = session.execute(
            update(ImapMessage)
            .where(
                ImapMessage.id == entry,
                ImapMessage.status == status,
                or_(
                    ImapMessage.claimed_until.is_(None),
                    ImapMessage.claimed_until < now,
                    ImapMessage.claimed_by == owner,
                ),
            )
            .values(claimed_by=owner, claimed_until=now + lease, updated_at=now)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_stored(db: Database, entry: int, import_id: int) -> None:
    """Committed through the door; `note` keeps the last failure before that, if any."""
    _finish(db, entry, status=STORED, import_id=import_id)


def record_failure(db: Database, entry: int, error: str) -> None:
    """Storing failed: the row stays found, to be tried again on the next pass."""
    with db.write() as session:
        session.execute(
            update(ImapMessage)
            .where(ImapMessage.id == entry)
            .values(
                attempts=ImapMessage.attempts + 1,
                note=error[:2000],
                claimed_by=None,
                claimed_until=None,
                updated_at=utcnow(),
            )
        )


def record_moved(db: Database, entry: int, folder: str, note: str | None = None) -> None:
    values: dict[str, Any] = {"status": MOVED, "moved_to": folder}
    if note is not None:
        values["note"] = note
    _finish(db, entry, **values)


def record_vanished(db: Database, entries: Sequence[int]) -> None:
    """Gone from the folder before we moved them (a person, or another poller that has just
    moved them and will say so: its word wins, as `record_moved` writes unconditionally)."""
    if not entries:
        return
    with db.write() as session:
        session.execute(
            update(ImapMessage)
            .where(ImapMessage.id.in_(entries), ImapMessage.status.in_((FOUND, STORED)))
            .values(status=VANISHED, claimed_by=None, claimed_until=None, updated_at=utcnow())
        )


def _finish(db: Database, entry: int, **values: Any) -> None:
    with db.write() as session:
        session.execute(
            update(ImapMessage)
            .where(ImapMessage.id == entry)
            .values(**values, claimed_by=None, claimed_until=None, updated_at=utcnow())
        )


def record_success(db: Database, mailbox: int, at: datetime | None = None) -> None:
    with db.write() as session:
        session.execute(
            update(ImapMailbox)
            .where(ImapMailbox.id == mailbox)
            .values(last_success_at=at or utcnow(), failures=0, updated_at=utcnow())
        )


def record_error(db: Database, name: str, error: str, at: datetime | None = None) -> None:
    """The server could not be read; by name, as the mailbox row may not exist yet."""
    now = at or utcnow()
    with db.write() as session:
        session.execute(
            _insert(session)(ImapMailbox)
            .values(name=name, last_uid=0, failures=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        session.execute(
            update(ImapMailbox)
            .where(ImapMailbox.name == name)
            .values(
                last_error_at=now,
                last_error=error[:2000],
                failures=ImapMailbox.failures + 1,
                updated_at=now,
            )
        )


def mailbox_state(session: Session, name: str) -> ImapMailbox | None:
    """For ops and tests: a mailbox's position and health."""
    return session.scalars(select(ImapMailbox).where(ImapMailbox.name == name)).first()


def ledger(session: Session, name: str) -> list[ImapMessage]:
    """For ops and tests: every row of a mailbox's ledger, in the order they were found."""
    return list(
        session.scalars(
            select(ImapMessage)
            .join(ImapMailbox, and_(ImapMailbox.id == ImapMessage.mailbox_id))
            .where(ImapMailbox.name == name)
            .order_by(ImapMessage.id)
        ).all()
    )
