"""Sends what the outbox holds: replies decided in a transaction go out after it commits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest import metrics
from notify.mailer import Mailer, PermanentDeliveryError, TransientDeliveryError
from store.db import Database
from store.models import Import, OutboxMessage
from store.outbox import due_mail, mark_failed, mark_sent
from store.types import utcnow

log = structlog.get_logger()


def _observe_reply_latency(session: Session, mail: OutboxMessage) -> None:
    if mail.purpose != "reply" or mail.import_id is None or mail.sent_at is None:
        return
    received = session.scalar(select(Import.received_at).where(Import.id == mail.import_id))
    if received is not None:
        metrics.observe_reply((mail.sent_at - received).total_seconds())


class Dispatcher:
    """At most one delivery per outbox row: the row is locked while it is sent and marked
    sent in the same transaction. A crash between the relay's 250 and that commit sends it
    again with the same Message-ID (the file outbox then finds its file and writes nothing)."""

    def __init__(
        self, db: Database, mailer: Mailer, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db, self._mailer, self._clock = db, mailer, clock

    def send_due(self) -> int:
        sent = 0
        with self._db.write() as session:
            for mail in due_mail(session, self._clock()):
                message = message_from_bytes(mail.raw, policy=policy.default)
                assert isinstance(message, EmailMessage)
                try:
                    delivery = self._mailer.send(message)
                except (TransientDeliveryError, PermanentDeliveryError) as exc:
                    permanent = isinstance(exc, PermanentDeliveryError)
                    mark_failed(mail, str(exc), self._clock(), permanent)
                    log.warning(
                        "reply not delivered",
                        import_id=mail.import_id,
                        error=str(exc),
                        permanent=permanent,
                    )
                    continue
                mark_sent(mail, delivery, self._clock())
                _observe_reply_latency(session, mail)
                log.info(
                    "reply sent", import_id=mail.import_id, to=mail.to_address, delivery=delivery
                )
                sent += 1
        return sent

    def run(self, stop: threading.Event, wakeup: threading.Event, idle_poll: float) -> None:
        while not stop.is_set():
            try:
                busy = self.send_due() > 0
            except Exception:
                log.exception("outbox dispatcher error")
                busy = False
            if not busy:
                wakeup.wait(idle_poll)
                wakeup.clear()
