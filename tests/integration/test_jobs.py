"""Scheduled jobs with an injected clock: the SLA watch, raw-mail retention, stale ECB rates,
and the lock that lets one process of several run them. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from ingest.accept import Door, Envelope
from ingest.jobs import Jobs, SchedulerLock
from parsers.fx import Rates
from store.db import Database
from store.models import Import, InboundMessage, OutboxMessage
from store.states import Status, transition
from support.mail import message
from support.service import settings_for

FRIDAY_3PM = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # due Monday 23 Nov, 15:00 UTC (FR)


def accept_at(db: Database, n: int, when: datetime) -> int:
    return (
        Door(db, 100 * 1024, clock=lambda: when)
        .accept(message(n), "smtp", Envelope("a@b.example", ("import@stax.localhost",)))
        .import_id
    )


def set_status(db: Database, import_id: int, *path: Status) -> None:
    with db.write() as session:
        import_ = session.get_one(Import, import_id)
        for status in path:
            transition(session, import_, status, reason="test", actor="test")


def alerts(db: Database) -> list[tuple[str, int | None]]:
    with db.read() as session:
        rows = session.execute(
            select(OutboxMessage.purpose, OutboxMessage.import_id).order_by(OutboxMessage.id)
        ).all()
    return [(r.purpose, r.import_id) for r in rows]


def jobs_at(db: Database, tmp_path: Path, now: datetime, **kwargs: object) -> Jobs:
    settings = settings_for(str(db.url), tmp_path)
    return Jobs(db, settings, clock=lambda: now, **kwargs)  # type: ignore[arg-type]


def test_the_sla_watch_warns_at_75_percent_and_alerts_on_breach_once(
    db: Database, tmp_path: Path
) -> None:
    held = accept_at(db, 1, FRIDAY_3PM)
    answered = accept_at(db, 2, FRIDAY_3PM)
    set_status(db, answered, Status.PROCESSING, Status.IMPORTED)

    early = jobs_at(db, tmp_path, FRIDAY_3PM + timedelta(hours=20)).watch_sla()
    assert (early.warned, early.breached) == ([], [])  # 28 % of three calendar days
    monday_8am = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert jobs_at(db, tmp_path, monday_8am).watch_sla().warned == [held]
    assert jobs_at(db, tmp_path, monday_8am).watch_sla().warned == []  # once
    monday_4pm = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    assert jobs_at(db, tmp_path, monday_4pm).watch_sla().breached == [held]
    assert jobs_at(db, tmp_path, monday_4pm).watch_sla().breached == []
    assert alerts(db) == [("sla-warning", held), ("sla-breach", held)]
    with db.read() as session:
        to = session.scalars(select(OutboxMessage.to_address)).all()
    assert set(to) == {"ops@stax.localhost"}


def test_retention_purges_raw_mail_of_answered_imports_only(db: Database, tmp_path: Path) -> None:
    old = datetime(2026, 1, 5, tzinfo=UTC)
    answered = accept_at(db, 1, old)
    set_status(db, answered, Status.PROCESSING, Status.REJECTED)
    waiting = accept_at(db, 2, old)  # still needs a person: its bytes stay
    recent = accept_at(db, 3, FRIDAY_3PM)
    set_status(db, recent, Status.PROCESSING, Status.IMPORTED)

    assert jobs_at(db, tmp_path, FRIDAY_3PM).purge_raw_mail() == 1
    with db.read() as session:
        rows = {i.id: i.inbound for i in session.scalars(select(Import)).all()}
        raw = {
            i: session.scalar(select(InboundMessage.raw).where(InboundMessage.id == rows[i].id))
            for i in rows
        }
    assert raw[answered] is None and rows[answered].raw_purged_at is not None
    assert raw[waiting] is not None and raw[recent] is not None
    assert len(rows) == 3  # the rows stay


def test_stale_ecb_rates_raise_one_alert_a_day(db: Database, tmp_path: Path) -> None:
    history = tmp_path / "eurofxref-hist.csv"
    history.write_text("Date,USD,JPY,\n2026-11-06,1.0412,160.5,\n2026-11-05,1.0400,160.1,\n")
    rates = Rates.from_file(history)
    fresh = jobs_at(db, tmp_path, datetime(2026, 11, 12, tzinfo=UTC), rates=lambda: rates)
    assert not fresh.check_rates()
    stale_day = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert jobs_at(db, tmp_path, stale_day, rates=lambda: rates).check_rates()
    assert jobs_at(db, tmp_path, stale_day + timedelta(hours=6), rates=lambda: rates).check_rates()
    assert alerts(db) == [("fx-stale", None)]  # the second check stayed quiet


def test_one_process_of_several_holds_the_scheduler(db: Database, tmp_path: Path) -> None:
    first, second = SchedulerLock(db, tmp_path), SchedulerLock(db, tmp_path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_a_mailbox_unreachable_for_15_minutes_raises_one_alert(
    db: Database, tmp_path: Path
) -> None:
    from store.mailboxes import mailbox_id, record_error, record_success

    name = "importer@127.0.0.1/INBOX"
    box = mailbox_id(db, name)
    ok_at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    record_success(db, box, at=ok_at)
    record_error(db, name, "connection refused", at=ok_at + timedelta(minutes=1))
    assert jobs_at(db, tmp_path, ok_at + timedelta(minutes=10)).check_mailboxes() == []
    later = ok_at + timedelta(minutes=16)
    assert jobs_at(db, tmp_path, later).check_mailboxes() == [name]
    jobs_at(db, tmp_path, later + timedelta(minutes=5)).check_mailboxes()
    assert alerts(db) == [(f"mailbox-down:{box}", None)]  # once, not every minute
    record_success(db, box, at=later + timedelta(minutes=6))
    assert jobs_at(db, tmp_path, later + timedelta(minutes=7)).check_mailboxes() == []
