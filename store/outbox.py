"""The outbox: mail decided in a transaction, sent afterwards, recorded once sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import OutboxMessage

SUPPRESSED = "suppressed"  # an automatic reply the rules said not to send; kept for support


def queue_mail(
    session: Session,
    *,
    import_id: int | None,
    purpose: str,
    message_id: str,
    to_address: str,
    raw: bytes,
    fingerprint: str | None,
    now: datetime,
) -> None:
    session.add(
        OutboxMessage(
            import_id=import_id,
            purpose=purpose,
            message_id=message_id,
            to_address=to_address,
            raw=raw,
            fingerprint=fingerprint,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def record_suppressed(
    session: Session,
    *,
    import_id: int,
    purpose: str,
    to_address: str,
    reason: str,
    now: datetime,
) -> None:
    session.add(
        OutboxMessage(
            import_id=import_id,
            purpose=purpose,
            message_id="",
            to_address=to_address,
            raw=b"",
            fingerprint=None,
            status=SUPPRESSED,
            attempts=0,
            next_attempt_at=now,
            last_error=reason,
            created_at=now,
        )
    )


def recent_replies(session: Session, since: datetime) -> list[tuple[str, str | None, datetime]]:
    """(to, fingerprint, created) of the replies sent or on their way since `since`."""
    rows = session.execute(
        select(OutboxMessage.to_address, OutboxMessage.fingerprint, OutboxMessage.created_at).where(
            OutboxMessage.purpose.in_(("reply", "follow-up")),
            OutboxMessage.status != SUPPRESSED,
            OutboxMessage.created_at >= since,
        )
    ).all()
    return [(r.to_address, r.fingerprint, r.created_at) for r in rows]


def due_mail(session: Session, now: datetime, limit: int = 20) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )


def mark_sent(mail: OutboxMessage, delivery: str, now: datetime) -> None:
    mail.status, mail.sent_at, mail.last_error = "sent", now, delivery[:500]
    mail.attempts += 1


def mark_failed(
    mail: OutboxMessage, error: str, now: datetime, permanent: bool, max_attempts: int = 8
) -> None:
    mail.attempts += 1
    mail.last_error = error[:2000]
    if permanent or mail.attempts >= max_attempts:
        mail.status = "failed"
        return
    mail.next_attempt_at = now + timedelta(seconds=min(30 * 2**mail.attempts, 3600))


def replies_of_import(session: Session, import_id: int) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.import_id == import_id)
            .order_by(OutboxMessage.id)
        ).all()
    )


REPLY_PURPOSES = ("reply", "follow-up")


def next_purpose(session: Session, import_id: int) -> str | None:
    """ "reply" for an import's first answer, "follow-up" once a person has acted on it, and
    None after that: a message is never answered more than twice."""
    used = set(
        session.scalars(
            select(OutboxMessage.purpose).where(OutboxMessage.import_id == import_id)
        ).all()
    )
    return next((p for p in REPLY_PURPOSES if p not in used), None)
