"""The ingest queue: claiming imports for workers, finishing them, and listing them for ops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from store.db import Database
from store.models import Import, ImportEvent, InboundMessage
from store.queue_page import QueueFilter, filtered
from store.states import Status, TransitionConflict, transition


@dataclass(frozen=True)
class Claim:
    """An import a worker holds for the length of its lease."""

    import_id: int
    inbound_id: int
    attempt: int
    message_id: str
    released: bool = False  # a person released it from held: what held it is accepted


@dataclass(frozen=True)
class Requeued:
    import_id: int
    lost_worker: str
    status: Status  # received again, or quarantined after its last attempt


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_seconds: float

    def delay_after(self, attempt: int) -> timedelta:
        return timedelta(seconds=self.backoff_seconds * 2 ** max(attempt - 1, 0))


def claim_next(db: Database, owner: str, lease: timedelta, now: datetime) -> Claim | None:
    """Take the oldest due `received` import; SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
    SQLite, and a compare-and-set status update on both, so no import is claimed twice."""
    with db.write() as session:
        import_ = session.scalars(
            select(Import)
            .where(
                Import.status == Status.RECEIVED.value,
                or_(Import.next_attempt_at.is_(None), Import.next_attempt_at <= now),
            )
            .order_by(Import.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if import_ is None:
            return None
        attempt = import_.attempts + 1
        transition(
            session,
            import_,
            Status.PROCESSING,
            reason=f"attempt {attempt}",
            actor=owner,
            changes={"attempts": attempt, "lease_owner": owner, "lease_until": now + lease},
        )
        message_id = session.scalar(
            select(InboundMessage.message_id).where(InboundMessage.id == import_.inbound_id)
        )
        return Claim(
            import_.id,
            import_.inbound_id,
            attempt,
            message_id or "",
            released=was_released(session, import_.id),
        )


# who moves an import when `stax-import replay` does: a replay is no person's release
REPLAY_ACTOR = "replay"


def was_released(session: Session, import_id: int) -> bool:
    """True when the import's latest hold was ended by a person's release."""
    events = session.execute(
        select(ImportEvent.from_status, ImportEvent.to_status, ImportEvent.actor)
        .where(ImportEvent.import_id == import_id)
        .order_by(ImportEvent.id.desc())
    ).all()
    for from_status, to_status, actor in events:
        if to_status == Status.HELD.value:
            return False
        if from_status == Status.HELD.value and to_status == Status.RECEIVED.value:
            # a replay queues a held import again to be decided afresh: what held it still
            # holds it unless a person accepts it
            return actor != REPLAY_ACTOR
    return False


class NotAllowed(Exception):
    """An ops action that the import's status does not allow; the message says why."""


def ops_move(
    db: Database,
    import_id: int,
    to: Status,
    allowed_from: frozenset[Status],
    reason: str,
    actor: str,
    now: datetime,
    unchanged_since: datetime | None = None,
) -> Import:
    """retry, release, reject: a person moves an import, with the reason recorded. With
    `unchanged_since` (the `updated_at` the caller decided on), an import moved meanwhile,
    even back to the same status, is NotAllowed: the decision was about another state."""
    with db.write() as session:
        import_ = session.get(Import, import_id)
        if import_ is None:
            raise LookupError(import_id)
        current = Status(import_.status)
        if current not in allowed_from:
            raise NotAllowed(f"import {import_id} is {current.value}")
        if unchanged_since is not None and import_.updated_at != unchanged_since:
            raise NotAllowed(f"import {import_id} was moved meanwhile")
        changes: dict[str, object] = {"next_attempt_at": now}
        if current is Status.QUARANTINED:
            changes["attempts"] = 0  # a fresh set of attempts after a fix
        transition(
            session,
            import_,
            to,
            reason=reason,
            actor=actor,
            changes=changes if to is Status.RECEIVED else None,
        )
        return import_


def finish(
    db: Database,
    claim: Claim,
    to: Status,
    reason: str,
    actor: str,
    effects: Callable[[Session], None] | None = None,
) -> None:
    """Record a worker's verdict on an import it holds, and what comes with it (documents,
    the reply) in the same transaction: all of it or none of it."""
    with db.write() as session:
        import_ = session.get_one(Import, claim.import_id)
        transition(
            session,
            import_,
            to,
            reason=reason,
            actor=actor,
            changes={"lease_owner": None, "lease_until": None},
        )
        if effects is not None:
            effects(session)


def fail_attempt(
    db: Database, claim: Claim, error: str, actor: str, policy: RetryPolicy, now: datetime
) -> Status:
    """An attempt failed: back to the queue with backoff, or quarantined after the last one."""
    with db.write() as session:
        import_ = session.get_one(Import, claim.import_id)
        return _give_back(
            session, import_, f"attempt {claim.attempt} failed: {error}", actor, policy, now
        )


def requeue_expired_leases(db: Database, policy: RetryPolicy, now: datetime) -> list[Requeued]:
    """Imports whose worker died mid-attempt (a crash, SIGKILL) go back to the queue at once.
    The lost attempt counts, so a message that kills its worker ends up quarantined."""
    with db.read() as session:  # the common case, nothing expired, takes no write lock
        expired_ids = session.scalars(
            select(Import.id).where(
                Import.status == Status.PROCESSING.value, Import.lease_until < now
            )
        ).all()
    if not expired_ids:
        return []
    moved: list[Requeued] = []
    with db.write() as session:
        for import_ in session.scalars(select(Import).where(Import.id.in_(expired_ids))).all():
            if import_.status != Status.PROCESSING.value or import_.lease_until is None:
                continue
            if import_.lease_until >= now:
                continue
            owner = import_.lease_owner or "?"
            reason = (
                f"attempt {import_.attempts} was lost: its worker ({owner}) stopped "
                "before finishing"
            )
            try:
                status = _give_back(
                    session, import_, reason, "lease-reaper", policy, now, backoff=False
                )
            except TransitionConflict:
                continue
            moved.append(Requeued(import_.id, owner, status))
    return moved


def _give_back(
    session: Session,
    import_: Import,
    reason: str,
    actor: str,
    policy: RetryPolicy,
    now: datetime,
    backoff: bool = True,
) -> Status:
    released = {"lease_owner": None, "lease_until": None}
    if import_.attempts >= policy.max_attempts:
        transition(
            session,
            import_,
            Status.QUARANTINED,
            reason=f"{reason}; quarantined after {import_.attempts} attempts",
            actor=actor,
            changes=released,
        )
        return Status.QUARANTINED
    # A lost worker says nothing about the message: try again at once, not after a backoff.
    retry_at = now + policy.delay_after(import_.attempts) if backoff else now
    transition(
        session,
        import_,
        Status.RECEIVED,
        reason=reason,
        actor=actor,
        changes={**released, "next_attempt_at": retry_at},
    )
    return Status.RECEIVED


def list_imports(
    session: Session, wanted: QueueFilter | None = None, limit: int = 500
) -> list[Import]:
    """The queue, oldest first, with each import's message and account loaded; narrowed by
    status, account and age as the console's queue page is."""
    query = (
        filtered(select(Import), wanted or QueueFilter())
        .options(selectinload(Import.inbound), selectinload(Import.account))
        .order_by(Import.id)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def get_import(session: Session, import_id: int) -> Import | None:
    return session.scalar(
        select(Import)
        .options(
            selectinload(Import.inbound),
            selectinload(Import.account),
            selectinload(Import.events),
        )
        .where(Import.id == import_id)
    )


def find_by_message_id(session: Session, message_id: str) -> Import | None:
    return session.scalars(
        select(Import)
        .join(InboundMessage)
        .where(InboundMessage.message_id == message_id)
        .order_by(Import.id)
    ).first()
