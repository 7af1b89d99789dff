"""Alerts for ops (SLA, stale rates, unreachable mailboxes): a log line and a mail to
STAX_OPS_ADDRESS through the outbox, once per subject of alarm."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import OutboxMessage
from store.outbox import queue_mail

log = structlog.get_logger()


def alert_once(
    session: Session,
    *,
    kind: str,
    subject: str,
    body: str,
    to: str,
    sender: str,
    now: datetime,
    import_id: int | None = None,
    quiet_for: timedelta | None = None,
) -> bool:
    """Queue an alert unless this one (kind and import, or kind alone within `quiet_for`)
    was raised already; True when queued."""
    earlier = select(OutboxMessage.id).where(OutboxMessage.purpose == kind)
    if import_id is not None:
        earlier = earlier.where(OutboxMessage.import_id == import_id)
    if quiet_for is not None:
        earlier = earlier.where(OutboxMessage.created_at >= now - quiet_for)
    if session.scalars(earlier.limit(1)).first() is not None:
        return False
    mail = EmailMessage()
    mail["From"] = f"Stax mail import <{sender}>"
    mail["To"] = to
    mail["Subject"] = f"[stax-import] {subject}"
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = make_msgid("stax-import-alert", sender.rpartition("@")[2])
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(body)
    queue_mail(
        session,
        import_id=import_id,
        purpose=kind,
        message_id=str(mail["Message-ID"]),
        to_address=to,
        raw=mail.as_bytes(),
        fingerprint=None,
        now=now,
    )
    log.warning("ops alert", kind=kind, subject=subject, import_id=import_id)
    return True
