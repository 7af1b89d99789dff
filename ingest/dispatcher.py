"""Sends what the outbox holds: replies decided in a transaction go out after it commits."""

from __future__ import annotations

import logging
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
from store.outbox import claim_for_sending, due_mail, mark_failed, mark_sent
from store.types import utcnow

log = structlog.get_logger()


def _observe_reply_latency(session: Session, mail_id: int) -> None:
    mail = session.get_one(OutboxMessage, mail_id)
    if mail.purpose != "reply" or mail.import_id is None or mail.sent_at is None:
        return
    received = session.scalar(select(Import.received_at).where(Import.id == mail.import_id))
    if received is not None:
        metrics.observe_reply((mail.sent_at - received).total_seconds())


class Dispatcher:
    """Sends each due outbox row once: claimed in one short transaction, sent outside any,
    recorded in another. A crash between the relay's 250 and that record sends it again
    once the claim runs out, with the same Message-ID (the file outbox then finds its file
    and writes nothing; a mail client shows one message for one Message-ID)."""

    def __init__(
        self, db: Database, mailer: Mailer, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db, self._mailer, self._clock = db, mailer, clock

    def send_due(self) -> int:
        with self._db.read() as session:
            due = due_mail(session, self._clock())
        return sum(self._send_one(mail_id) for mail_id in due)

    def _send_one(self, mail_id: int) -> bool:
        with self._db.write() as session:
            mail = claim_for_sending(session, mail_id, self._clock())
            if mail is None:
                return False  # another dispatcher has it
            import_id, to, raw = mail.import_id, mail.to_address, mail.raw
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        try:
            delivery = self._mailer.send(message)
        except (TransientDeliveryError, PermanentDeliveryError) as exc:
            permanent = isinstance(exc, PermanentDeliveryError)
            with self._db.write() as session:
                status = mark_failed(session, mail_id, str(exc), self._clock(), permanent)
            log.log(
                logging.ERROR if status == "failed" else logging.WARNING,
                "reply not delivered" + (": given up" if status == "failed" else ""),
                import_id=import_id,
                error=str(exc),
                permanent=permanent,
            )
            return False
        with self._db.write() as session:
            mark_sent(session, mail_id, delivery, self._clock())
            _observe_reply_latency(session, mail_id)
        log.info("reply sent", import_id=import_id, to=to, delivery=delivery)
        return True

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
