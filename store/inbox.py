"""Inbound mail: storing a raw message with its first import, idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Import, InboundMessage
from store.states import Status, record_creation


@dataclass(frozen=True)
class NewMessage:
    """Everything `accept` learnt about a message before storing it."""

    raw: bytes
    sha256: str
    message_id: str  # "" when the message has none
    source: str
    envelope_from: str
    envelope_to: tuple[str, ...]
    header_from: str
    subject: str
    received_at: datetime
    status: Status  # received, or rejected at the door
    reason: str | None


@dataclass(frozen=True)
class StoredImport:
    import_id: int
    status: Status
    created: bool


def store_message(session: Session, message: NewMessage) -> StoredImport:
    """Insert the message and its import; a redelivery returns the import it already has."""
    inbound_id = _insert_unless_known(session, message)
    if inbound_id is None:
        existing = session.execute(
            select(Import.id, Import.status)
            .join(InboundMessage)
            .where(
                InboundMessage.message_id == message.message_id,
                InboundMessage.sha256 == message.sha256,
            )
        ).one()
        return StoredImport(existing.id, Status(existing.status), created=False)
    import_ = Import(
        inbound_id=inbound_id,
        status=message.status.value,
        reason=message.reason,
        attempts=0,
        next_attempt_at=message.received_at,
        received_at=message.received_at,
        updated_at=message.received_at,
    )
    session.add(import_)
    record_creation(
        session,
        import_,
        reason=message.reason or f"accepted via {message.source}",
        actor=message.source,
        at=message.received_at,
    )
    session.flush()
    return StoredImport(import_.id, message.status, created=True)


def _insert_unless_known(session: Session, message: NewMessage) -> int | None:
    values = {
        "message_id": message.message_id,
        "sha256": message.sha256,
        "size": len(message.raw),
        "source": message.source,
        "envelope_from": message.envelope_from,
        "envelope_to": list(message.envelope_to),
        "header_from": message.header_from,
        "subject": message.subject,
        "received_at": message.received_at,
        "raw": message.raw,
    }
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    statement = (
        insert(InboundMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["message_id", "sha256"])
        .returning(InboundMessage.id)
    )
    return session.execute(statement).scalar_one_or_none()


def load_raw(session: Session, inbound_id: int) -> bytes | None:
    return session.execute(
        select(InboundMessage.raw).where(InboundMessage.id == inbound_id)
    ).scalar_one()
