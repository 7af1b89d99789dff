"""The outbox: mail decided in a transaction, sent afterwards, recorded once sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
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


# A claimed mail is not due again for this long: longer than a relay send can take (30 s
# per command), so two dispatchers never send one mail at once, and short enough that a
# dispatcher killed mid-send leaves its mail to another within minutes.
SEND_LEASE = timedelta(minutes=5)
# A relay that keeps answering 4xx, or is away, is tried again with a growing pause (30 s,
# doubling, at most an hour) for this long, the SLA day and a weekend, before giving up.
RETRY_FOR = timedelta(days=3)


def due_mail(session: Session, now: datetime, limit: int = 20) -> list[int]:
    """The ids of pending mail whose time has come, oldest first."""
    return list(
        session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()
    )


def claim_for_sending(session: Session, mail_id: int, now: datetime) -> OutboxMessage | None:
    """Take one due mail for SEND_LEASE (compare-and-set on its next attempt time), or None
    when another dispatcher took it first. The caller commits, then sends outside any
    transaction: a slow relay must not hold the database (on SQLite, every writer)."""
    claimed = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == mail_id,
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + SEND_LEASE)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get_one(OutboxMessage, mail_id)


def mark_sent(session: Session, mail_id: int, delivery: str, now: datetime) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == mail_id)
        .values(
            status="sent",
            sent_at=now,
            last_error=delivery[:500],
            attempts=OutboxMessage.attempts + 1,
        )
    )


def mark_failed(session: Session, mail_id: int, error: str, now: datetime, permanent: bool) -> str:
    """Record a failed attempt; returns the mail's status after it (pending or failed)."""
    mail = session.get_one(OutboxMessage, mail_id)
    mail.attempts += 1
    mail.last_error = error[:2000]
    if permanent or now - mail.created_at >= RETRY_FOR:
        mail.status = "failed"
    else:
        mail.next_attempt_at = now + timedelta(seconds=min(30 * 2**mail.attempts, 3600))
    return mail.status


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
