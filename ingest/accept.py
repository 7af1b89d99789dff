"""The one door in: SMTP, IMAP and `stax-import ingest` all store mail through `accept`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from ingest.headers import inspect_header_block
from store.db import Database
from store.inbox import NewMessage, StoredImport, store_messages
from store.states import Status
from store.types import utcnow

SOURCES = ("smtp", "imap", "cli")

log = structlog.get_logger()


@dataclass(frozen=True)
class Envelope:
    mail_from: str  # "" for the null reverse-path
    rcpt_to: tuple[str, ...]


@dataclass(frozen=True)
class Incoming:
    raw: bytes
    source: str
    envelope: Envelope


@dataclass(frozen=True)
class Accepted:
    import_id: int
    status: Status
    created: bool  # False: a redelivery of a message we already hold


class Door:
    """Stores raw mail durably. When `accept` returns, the message and its import are
    committed; callers acknowledge (SMTP 250, IMAP move) only after that."""

    def __init__(
        self,
        db: Database,
        max_header_bytes: int,
        clock: Callable[[], datetime] = utcnow,
        on_accepted: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._max_header_bytes = max_header_bytes
        self._clock = clock
        self._on_accepted = on_accepted

    def accept(self, raw: bytes, source: str, envelope: Envelope) -> Accepted:
        return self.accept_many([Incoming(raw, source, envelope)])[0]

    def accept_many(self, batch: Sequence[Incoming]) -> list[Accepted]:
        """Store several messages in one transaction: one disk flush for all of them."""
        messages = [self._describe(item) for item in batch]
        with self._db.write() as session:
            stored: list[StoredImport] = store_messages(session, messages)
        results = [Accepted(s.import_id, s.status, s.created) for s in stored]
        for message, result in zip(messages, results, strict=True):
            log.info(
                "accepted" if result.created else "redelivery",
                import_id=result.import_id,
                message_id=message.message_id,
                source=message.source,
                size=len(message.raw),
                status=result.status.value,
            )
        if any(r.created for r in results):
            self._on_accepted()
        return results

    def _describe(self, item: Incoming) -> NewMessage:
        if item.source not in SOURCES:
            raise ValueError(f"unknown source {item.source!r}")
        summary = inspect_header_block(item.raw, self._max_header_bytes)
        return NewMessage(
            raw=item.raw,
            sha256=hashlib.sha256(item.raw).hexdigest(),
            message_id=summary.message_id,
            source=item.source,
            envelope_from=item.envelope.mail_from,
            envelope_to=item.envelope.rcpt_to,
            header_from=summary.from_address,
            subject=summary.subject,
            received_at=self._clock(),
            status=Status.REJECTED if summary.problem else Status.RECEIVED,
            reason=summary.problem,
        )
