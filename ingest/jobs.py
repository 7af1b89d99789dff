"""Scheduled jobs (apscheduler 3): the SLA watch, raw-mail retention, stale ECB rates. Each
is short; with several service processes only the one holding the scheduler lock runs them."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from config.settings import Settings
from ingest import metrics
from ingest.alerts import alert_once
from ingest.sla import sla_due
from parsers.fx import Rates
from store.db import Database
from store.models import ImapMailbox, Import, InboundMessage
from store.states import FINAL, Status
from store.types import utcnow

log = structlog.get_logger()

OPEN = [s.value for s in Status if s not in FINAL]  # the SLA clock runs for these
PG_SCHEDULER_LOCK = 7_410_221_906


@dataclass(frozen=True)
class SlaFindings:
    warned: list[int]
    breached: list[int]


class Jobs:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        rates: Callable[[], Rates] | None = None,
    ) -> None:
        self._db, self._settings, self._clock = db, settings, clock
        self._rates = rates or (lambda: Rates.load(settings.data_dir))

    def watch_sla(self) -> SlaFindings:
        """Warn ops when an unanswered import has used 75 % of its time; alert on breach."""
        now, s = self._clock(), self._settings
        warned, breached = [], []
        with self._db.write() as session:
            open_imports = session.execute(
                select(Import.id, Import.status, Import.received_at).where(Import.status.in_(OPEN))
            ).all()
            for import_id, status, received_at in open_imports:
                due = sla_due(received_at, s.sla_calendar)
                used = (now - received_at) / max(due - received_at, timedelta(seconds=1))
                if now >= due and self._alert(
                    session, "sla-breach", import_id, status, due, now, "has missed its SLA"
                ):
                    breached.append(import_id)
                    metrics.count_sla_breach()
                elif used >= s.sla_warn_fraction and self._alert(
                    session,
                    "sla-warning",
                    import_id,
                    status,
                    due,
                    now,
                    f"has used {int(used * 100)} % of its SLA",
                ):
                    warned.append(import_id)
                    metrics.count_sla_warning()
        return SlaFindings(warned, breached)

    def purge_raw_mail(self) -> int:
        """Raw bytes of answered imports older than the retention go; the rows stay."""
        cutoff = self._clock() - timedelta(days=self._settings.raw_retention_days)
        final = [s.value for s in FINAL]
        with self._db.write() as session:
            answered = select(Import.inbound_id).where(Import.status.in_(final))
            result = session.execute(
                update(InboundMessage)
                .where(
                    InboundMessage.received_at < cutoff,
                    InboundMessage.raw.is_not(None),
                    InboundMessage.id.in_(answered),
                )
                .values(raw=None, raw_purged_at=self._clock())
                .execution_options(synchronize_session=False)
            )
        purged = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if purged:
            log.info("purged raw mail", messages=purged, older_than=cutoff.isoformat())
        return purged

    def check_rates(self) -> bool:
        """True (and an alert, once a day) when the ECB data is older than 10 days."""
        now = self._clock()
        last = self._rates().last_day
        if (now.date() - last).days <= self._settings.fx_stale_days:
            return False
        with self._db.write() as session:
            alert_once(
                session,
                kind="fx-stale",
                subject=f"ECB rates end on {last}",
                body=f"The ECB rate data ends on {last}. Imports dated after it are "
                "held until newer rates are loaded: stax-import fx load "
                "eurofxref-hist.zip",
                to=self._settings.ops_address,
                sender=self._settings.import_address,
                now=now,
                quiet_for=timedelta(days=1),
            )
        return True

    def check_mailboxes(self) -> list[str]:
        """Alert (once a day per mailbox) when a mailbox has been unreachable for longer
        than `mailbox_down_minutes`: its last error is newer than its last success."""
        now = self._clock()
        limit = timedelta(minutes=self._settings.mailbox_down_minutes)
        down: list[str] = []
        with self._db.write() as session:
            for mailbox in session.scalars(select(ImapMailbox)).all():
                if mailbox.last_error_at is None:
                    continue
                if mailbox.last_success_at and mailbox.last_success_at >= mailbox.last_error_at:
                    continue
                since = mailbox.last_success_at or mailbox.updated_at
                if now - since < limit:
                    continue
                down.append(mailbox.name)
                alert_once(
                    session,
                    kind=f"mailbox-down:{mailbox.id}",
                    subject=f"mailbox {mailbox.name} unreachable since {since:%H:%M} UTC",
                    body=f"The IMAP mailbox {mailbox.name} has not answered since "
                    f"{since.isoformat()}.\nLast error: {mailbox.last_error}\n",
                    to=self._settings.ops_address,
                    sender=self._settings.import_address,
                    now=now,
                    quiet_for=timedelta(days=1),
                )
        return down

    def _alert(
        self,
        session: Any,
        kind: str,
        import_id: int,
        status: str,
        due: datetime,
        now: datetime,
        what: str,
    ) -> bool:
        return alert_once(
            session,
            kind=kind,
            import_id=import_id,
            subject=f"import {import_id} ({status}) {what}",
            body=f"Import {import_id} is {status} and is due by {due.isoformat()}.\n"
            f"See: stax-import show {import_id}",
            to=self._settings.ops_address,
            sender=self._settings.import_address,
            now=now,
        )


class SchedulerLock:
    """Only one process runs the scheduled jobs: a PostgreSQL advisory lock held on its own
    connection, or a file lock beside the SQLite database. Losing the process frees it."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self._db, self._data_dir = db, data_dir
        self._connection: Connection | None = None
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        if self._db.is_sqlite:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self._data_dir / "scheduler.lock", "a+")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._file = handle
            return True
        connection = self._db.writer.connect()
        held = connection.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_SCHEDULER_LOCK}
        ).scalar()
        connection.commit()
        if not held:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            # closing only returns the connection to the pool, lock and all: unlock first
            self._connection.execute(
                text("SELECT pg_advisory_unlock(:k)"), {"k": PG_SCHEDULER_LOCK}
            )
            self._connection.commit()
            self._connection.close()
            self._connection = None


def start_scheduler(jobs: Jobs, settings: Settings) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    every = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 60}
    scheduler.add_job(
        jobs.watch_sla, "interval", seconds=settings.sla_watch_seconds, id="sla-watch", **every
    )
    scheduler.add_job(jobs.purge_raw_mail, "interval", hours=6, id="purge-raw", **every)
    scheduler.add_job(jobs.check_rates, "interval", hours=6, id="fx-staleness", **every)
    scheduler.add_job(jobs.check_mailboxes, "interval", minutes=1, id="mailbox-health", **every)
    scheduler.start()
    return scheduler
