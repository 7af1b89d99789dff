"""The one door and the queue, on SQLite and PostgreSQL: idempotent intake, safe claims,
the state machine's events, retries with backoff and quarantine."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ingest.accept import Door, Envelope, Incoming
from ingest.pipeline import ImportContext, Outcome, Pipeline
from ingest.worker import Worker
from store.db import Database, open_database
from store.models import Import, ImportEvent, InboundMessage
from store.queue import RetryPolicy, claim_next, get_import, requeue_expired_leases
from store.states import IllegalTransition, Status, TransitionConflict, transition
from support.mail import message

ENVELOPE = Envelope("finance@customer.example", ("import@stax.localhost",))
LIMIT = 100 * 1024


def door(db: Database) -> Door:
    return Door(db, LIMIT)


def count(db: Database, model: type) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def history(db: Database, import_id: int) -> list[tuple[str | None, str]]:
    with db.read() as session:
        imp = get_import(session, import_id)
        assert imp is not None
        return [(e.from_status, e.to_status) for e in imp.events]


def test_accept_stores_the_raw_bytes_and_a_received_import(db: Database) -> None:
    raw = message(1)
    accepted = door(db).accept(raw, "smtp", ENVELOPE)
    assert accepted.created and accepted.status is Status.RECEIVED
    with db.read() as session:
        imp = get_import(session, accepted.import_id)
        assert imp is not None
        assert imp.inbound.raw == raw
        assert imp.inbound.message_id == "<test-1@customer.example>"
        assert imp.inbound.envelope_to == ["import@stax.localhost"]
        assert imp.inbound.source == "smtp"
        assert imp.received_at.tzinfo is not None
    assert history(db, accepted.import_id) == [(None, "received")]


def test_the_same_bytes_twice_return_the_same_import(db: Database) -> None:
    raw = message(2)
    first = door(db).accept(raw, "smtp", ENVELOPE)
    again = door(db).accept(raw, "imap", ENVELOPE)
    assert again.import_id == first.import_id and not again.created
    assert count(db, InboundMessage) == 1 and count(db, Import) == 1


def test_same_message_id_with_other_bytes_is_a_new_message(db: Database) -> None:
    a = door(db).accept(message(3, size=100), "smtp", ENVELOPE)
    b = door(db).accept(message(3, size=200), "smtp", ENVELOPE)
    assert a.import_id != b.import_id


def test_a_message_without_message_id_is_keyed_by_its_hash(db: Database) -> None:
    raw = b"From: a@b.example\r\nSubject: Mistral import\r\n\r\nno id\r\n"
    first = door(db).accept(raw, "cli", Envelope("", ()))
    assert door(db).accept(raw, "cli", Envelope("", ())).import_id == first.import_id
    other = door(db).accept(raw + b"more\r\n", "cli", Envelope("", ()))
    assert other.import_id != first.import_id


def test_a_batch_with_a_repeat_stores_it_once(db: Database) -> None:
    raw = message(4)
    results = door(db).accept_many([Incoming(raw, "smtp", ENVELOPE)] * 3)
    assert [r.created for r in results] == [True, False, False]
    assert len({r.import_id for r in results}) == 1


def test_an_unreadable_header_block_is_kept_and_rejected_with_the_reason(db: Database) -> None:
    raw = b"X-Filler: " + b"a" * (LIMIT + 10) + b"\r\n\r\nbody"
    accepted = door(db).accept(raw, "smtp", ENVELOPE)
    assert accepted.status is Status.REJECTED
    with db.read() as session:
        imp = get_import(session, accepted.import_id)
        assert imp is not None and imp.inbound.raw == raw
        assert imp.reason == f"the header block is larger than {LIMIT} bytes"


def test_the_table_refuses_an_illegal_move(db: Database) -> None:
    accepted = door(db).accept(message(5), "smtp", ENVELOPE)
    with db.write() as session, pytest.raises(IllegalTransition):
        imp = session.get_one(Import, accepted.import_id)
        transition(session, imp, Status.IMPORTED, reason="skip the queue", actor="test")


def test_a_stale_status_loses_the_race(db: Database) -> None:
    accepted = door(db).accept(message(6), "smtp", ENVELOPE)
    with db.write() as session:
        stale = session.get_one(Import, accepted.import_id)
    claim_next(db, "worker-a", timedelta(minutes=5), datetime.now(UTC))
    with db.write() as session, pytest.raises(TransitionConflict):
        session.add(stale)
        transition(session, stale, Status.REJECTED, reason="ops", actor="ops")


def test_concurrent_claims_never_take_the_same_import(db: Database) -> None:
    for n in range(30):
        door(db).accept(message(100 + n), "smtp", ENVELOPE)
    claimed: list[int] = []
    lock = threading.Lock()

    def claim_all(owner: str) -> None:
        while claim := claim_next(db, owner, timedelta(minutes=5), datetime.now(UTC)):
            with lock:
                claimed.append(claim.import_id)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 30


class FailingStep:
    """Fails on purpose the first `failures` times, then imports."""

    name = "failing"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, context: ImportContext) -> Outcome | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        return Outcome(Status.IMPORTED, "imported 1 document")


def worker(db: Database, step: FailingStep, backoff: float = 0.0) -> Worker:
    return Worker(db, Pipeline([step]), RetryPolicy(3, backoff), timedelta(minutes=5), "w")


def test_a_failing_attempt_is_retried_and_then_succeeds(db: Database) -> None:
    accepted = door(db).accept(message(7), "smtp", ENVELOPE)
    w = worker(db, FailingStep(failures=2))
    while w.run_once():
        pass
    with db.read() as session:
        imp = session.get_one(Import, accepted.import_id)
        assert (imp.status, imp.attempts) == ("imported", 3)
    assert history(db, accepted.import_id) == [
        (None, "received"),
        ("received", "processing"),
        ("processing", "received"),
        ("received", "processing"),
        ("processing", "received"),
        ("received", "processing"),
        ("processing", "imported"),
    ]


def test_three_failures_quarantine_the_message_and_keep_its_bytes(db: Database) -> None:
    raw = message(8)
    accepted = door(db).accept(raw, "smtp", ENVELOPE)
    w = worker(db, FailingStep(failures=99))
    while w.run_once():
        pass
    with db.read() as session:
        imp = get_import(session, accepted.import_id)
        assert imp is not None
        assert (imp.status, imp.attempts) == ("quarantined", 3)
        assert "RuntimeError: boom 3" in (imp.reason or "")
        assert imp.inbound.raw == raw


def test_backoff_keeps_a_failed_import_out_of_the_queue_until_due(db: Database) -> None:
    door(db).accept(message(9), "smtp", ENVELOPE)
    step = FailingStep(failures=1)
    w = worker(db, step, backoff=3600)
    assert w.run_once()  # fails, retry due in an hour
    assert not w.run_once()
    assert step.calls == 1


def test_a_poison_message_does_not_block_the_ones_behind_it(db: Database) -> None:
    poison = door(db).accept(message(10), "smtp", ENVELOPE)
    fine = door(db).accept(message(11), "smtp", ENVELOPE)

    class PoisonStep:
        name = "poison"

        def __call__(self, context: ImportContext) -> Outcome | None:
            if context.import_id == poison.import_id:
                raise ValueError("parser crashed")
            return Outcome(Status.IMPORTED, "ok")

    w = Worker(db, Pipeline([PoisonStep()]), RetryPolicy(3, 0), timedelta(minutes=5), "w")
    while w.run_once():
        pass
    with db.read() as session:
        assert session.get_one(Import, poison.import_id).status == "quarantined"
        assert session.get_one(Import, fine.import_id).status == "imported"


def test_a_lost_worker_s_import_is_requeued_after_its_lease(db: Database) -> None:
    accepted = door(db).accept(message(12), "smtp", ENVELOPE)
    now = datetime.now(UTC)
    claim = claim_next(db, "dead-worker", timedelta(seconds=30), now)
    assert claim is not None
    policy = RetryPolicy(3, 0)
    assert requeue_expired_leases(db, policy, now + timedelta(seconds=10)) == []
    [requeued] = requeue_expired_leases(db, policy, now + timedelta(seconds=31))
    assert (requeued.import_id, requeued.lost_worker) == (claim.import_id, "dead-worker")
    with db.read() as session:
        imp = session.get_one(Import, accepted.import_id)
        assert imp.status == "received" and imp.lease_owner is None
        assert "dead-worker" in (imp.reason or "")


def test_every_transition_leaves_an_event_with_actor_and_reason(db: Database) -> None:
    accepted = door(db).accept(message(13), "smtp", ENVELOPE)
    worker(db, FailingStep(failures=0)).run_once()
    with db.read() as session:
        events = session.scalars(
            select(ImportEvent).where(ImportEvent.import_id == accepted.import_id)
        ).all()
    assert [(e.actor, e.reason) for e in events] == [
        ("smtp", "accepted via smtp"),
        ("w", "attempt 1"),
        ("w", "imported 1 document"),
    ]
    assert all(e.at.tzinfo is not None for e in events)


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    sqlite = open_database(f"sqlite:///{tmp_path / 'stax.db'}")
    for session_of in (sqlite.write, sqlite.read):
        with session_of() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    sqlite.dispose()


def test_a_verdict_that_cannot_be_written_fails_the_attempt_not_the_worker(
    db: Database,
) -> None:
    accepted = door(db).accept(message(14), "smtp", ENVELOPE)
    writes: list[int] = []

    def effects(session: object) -> None:
        writes.append(1)
        if len(writes) == 1:
            raise RuntimeError("unique index lost to another message")

    class Verdict:
        name = "verdict"

        def __call__(self, context: ImportContext) -> Outcome | None:
            return Outcome(Status.IMPORTED, "imported", effects)

    w = Worker(db, Pipeline([Verdict()]), RetryPolicy(3, 0), timedelta(minutes=5), "w")
    while w.run_once():
        pass
    with db.read() as session:
        imp = session.get_one(Import, accepted.import_id)
        assert (imp.status, imp.attempts) == ("imported", 2)
