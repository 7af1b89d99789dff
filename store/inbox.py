"""Inbound mail: storing raw messages with their first import, idempotently, a batch at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import Import, ImportEvent, InboundMessage
from store.states import Status, creation_event

# Intake writes through Core on these tables (see store_messages).
INBOUND = cast(Table, InboundMessage.__table__)
IMPORTS = cast(Table, Import.__table__)
EVENTS = cast(Table, ImportEvent.__table__)

Identity = tuple[str, str]  # (message_id, sha256): the unique index of inbound_messages


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

    @property
    def identity(self) -> Identity:
        return (self.message_id, self.sha256)


@dataclass(frozen=True)
class StoredImport:
    import_id: int
    status: Status
    created: bool


def store_messages(session: Session, messages: Sequence[NewMessage]) -> list[StoredImport]:
    """Insert the messages and their imports; a redelivery (here or earlier) gets the import
    it already has. Three statements a batch, whatever its size: the ORM's per-object flush
    cost more than the disk flush at intake rates."""
    firsts: dict[Identity, NewMessage] = {}
    for message in messages:
        firsts.setdefault(message.identity, message)
    new_inbound = _insert_unless_known(session, list(firsts.values()))
    created = {identity: firsts[identity] for identity in new_inbound}
    import_ids = _insert_imports(session, new_inbound, created)
    known = _existing_imports(session, [i for i in firsts if i not in new_inbound])

    results: list[StoredImport] = []
    reported_new: set[Identity] = set()
    for message in messages:
        identity = message.identity
        if identity in import_ids and identity not in reported_new:
            reported_new.add(identity)
            results.append(StoredImport(import_ids[identity], message.status, created=True))
        elif identity in import_ids:
            results.append(StoredImport(import_ids[identity], created[identity].status, False))
        else:
            import_id, status = known[identity]
            results.append(StoredImport(import_id, status, created=False))
    return results


def _insert_unless_known(session: Session, messages: list[NewMessage]) -> dict[Identity, int]:
    if not messages:
        return {}
    rows = [
        {
            "message_id": m.message_id,
            "sha256": m.sha256,
            "size": len(m.raw),
            "source": m.source,
            "envelope_from": m.envelope_from,
            "envelope_to": list(m.envelope_to),
            "header_from": m.header_from,
            "subject": m.subject,
            "received_at": m.received_at,
            "raw": m.raw,
        }
        for m in messages
    ]
    table = INBOUND
    dialect_insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    statement = (
        dialect_insert(table)
        .on_conflict_do_nothing(index_elements=["message_id", "sha256"])
        .returning(table.c.id, table.c.message_id, table.c.sha256)
    )
    # Core executemany on the session's connection: one cached statement, sent as
    # multi-row INSERTs ("insertmanyvalues"), without the ORM's bulk machinery.
    result = session.connection().execute(statement, rows)
    return {(r.message_id, r.sha256): r.id for r in result}


def _insert_imports(
    session: Session, inbound_ids: dict[Identity, int], messages: dict[Identity, NewMessage]
) -> dict[Identity, int]:
    if not inbound_ids:
        return {}
    rows = [
        {
            "inbound_id": inbound_id,
            "status": messages[identity].status.value,
            "reason": messages[identity].reason,
            "attempts": 0,
            "next_attempt_at": messages[identity].received_at,
            "received_at": messages[identity].received_at,
            "updated_at": messages[identity].received_at,
        }
        for identity, inbound_id in inbound_ids.items()
    ]
    connection = session.connection()
    returned = connection.execute(
        insert(IMPORTS).returning(IMPORTS.c.id, IMPORTS.c.inbound_id), rows
    )
    by_inbound = {r.inbound_id: r.id for r in returned}
    import_ids = {identity: by_inbound[inbound_id] for identity, inbound_id in inbound_ids.items()}
    events: list[dict[str, Any]] = []
    for identity, import_id in import_ids.items():
        m = messages[identity]
        events.append(
            creation_event(
                import_id,
                m.status,
                at=m.received_at,
                actor=m.source,
                reason=m.reason or f"accepted via {m.source}",
            )
        )
    connection.execute(insert(EVENTS), events)
    return import_ids


def _existing_imports(
    session: Session, identities: list[Identity]
) -> dict[Identity, tuple[int, Status]]:
    if not identities:
        return {}
    rows = session.execute(
        select(InboundMessage.message_id, InboundMessage.sha256, Import.id, Import.status)
        .join(Import, Import.inbound_id == InboundMessage.id)
        .where(tuple_(InboundMessage.message_id, InboundMessage.sha256).in_(identities))
    )
    return {(r.message_id, r.sha256): (r.id, Status(r.status)) for r in rows}


def load_raw(session: Session, inbound_id: int) -> bytes | None:
    return session.execute(
        select(InboundMessage.raw).where(InboundMessage.id == inbound_id)
    ).scalar_one()


@dataclass(frozen=True)
class StoredMessage:
    raw: bytes | None
    source: str
    envelope_from: str
    envelope_to: tuple[str, ...]
    received_at: datetime


def load_message(session: Session, inbound_id: int) -> StoredMessage:
    row = session.execute(
        select(
            InboundMessage.raw,
            InboundMessage.source,
            InboundMessage.envelope_from,
            InboundMessage.envelope_to,
            InboundMessage.received_at,
        ).where(InboundMessage.id == inbound_id)
    ).one()
    return StoredMessage(
        row.raw, row.source, row.envelope_from, tuple(row.envelope_to), row.received_at
    )
