"""The IMAP poller: one thread per mailbox, IDLE with a periodic full poll, reconnecting with
capped exponential backoff and jitter; a server that is down is a log line, never a crash."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import structlog

from config.settings import Settings
from ingest.accept import Door
from ingest.imap import ImapSession, MailboxAddress
from ingest.imap_intake import IntakeRules, MailboxIntake
from store import mailboxes
from store.db import Database

log = structlog.get_logger()

# how often the store is asked whether a stored message can be moved, while one waits
SETTLE_SECONDS = 0.25
BACKOFF_BASE_SECONDS = 1.0


def backoff_delay(failures: int, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Exponential from 1 s, capped, with "equal jitter": half fixed, half random, so that
    pollers that lost the same server do not come back in step."""
    delay = min(cap, BACKOFF_BASE_SECONDS * 2.0 ** max(failures - 1, 0))
    return delay / 2 + rng() * delay / 2


class MailboxPoller:
    def __init__(
        self, address: MailboxAddress, settings: Settings, db: Database, door: Door, index: int
    ) -> None:
        self.address = address
        self.name = f"imap-{index}"
        self._settings, self._db, self._door = settings, db, door
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{self.name}"
        self._failures = 0

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: connect, work, and on any failure log it, record it, back off."""
        with structlog.contextvars.bound_contextvars(mailbox=self.address.name):
            while not stop.is_set():
                session: ImapSession | None = None
                try:
                    session = self._connect()
                    self._serve(session, self._intake(stop), stop)
                except Exception as exc:
                    self._failed(exc, stop)
                finally:
                    if session is not None:
                        session.close()

    def _connect(self) -> ImapSession:
        s = self._settings
        return ImapSession(self.address, s.imap_timeout_seconds, s.imap_ca_file)

    def _intake(self, stop: threading.Event) -> MailboxIntake:
        s = self._settings
        rules = IntakeRules(
            processed_folder=s.imap_processed_folder,
            failed_folder=s.imap_failed_folder,
            start=s.imap_start,
            max_message_bytes=s.smtp_max_message_bytes,
            lease=timedelta(seconds=s.imap_lease_seconds),
            pause_before_move=s.imap_pause_before_move_seconds,
        )
        mailbox = mailboxes.mailbox_id(self._db, self.address.name)
        return MailboxIntake(self._db, self._door, mailbox, rules, self._owner, stop)

    def _serve(self, session: ImapSession, intake: MailboxIntake, stop: threading.Event) -> None:
        idle = self._settings.imap_idle and session.can_idle()
        log.info("IMAP mailbox connected", idle=idle)
        next_poll, arrived = 0.0, True
        while not stop.is_set():
            if arrived or time.monotonic() >= next_poll:
                intake.run_pass(session)
                self._succeeded(intake)
                delay = self._settings.imap_poll_seconds
                if intake.recheck:  # something was left unstored: look again within a lease
                    delay = min(delay, self._settings.imap_lease_seconds)
                next_poll = time.monotonic() + delay
            elif intake.decided():
                intake.settle(session)
            arrived = self._wait(session, intake, stop, next_poll, idle)

    def _wait(
        self,
        session: ImapSession,
        intake: MailboxIntake,
        stop: threading.Event,
        next_poll: float,
        idle: bool,
    ) -> bool:
        """Until new mail (True), the next full poll, an IDLE renewal, a decided import to
        move, or `stop`."""
        until = min(next_poll, time.monotonic() + self._settings.imap_idle_seconds)
        if idle:
            if intake.news(session.select()):
                return True
            session.idle()
        try:
            while not stop.is_set() and (left := until - time.monotonic()) > 0:
                step = min(SETTLE_SECONDS, left)
                if idle and session.wait(step):
                    return True
                if not idle:
                    stop.wait(step)
                if intake.decided():
                    return False
            return False
        except BaseException:
            idle = False  # the connection is in doubt: it is dropped, not taken out of IDLE
            raise
        finally:
            if idle:
                session.idle_done()

    def _succeeded(self, intake: MailboxIntake) -> None:
        if self._failures:
            log.info("IMAP mailbox reachable again", after_failures=self._failures)
        self._failures = 0
        mailboxes.record_success(self._db, intake.mailbox)

    def _failed(self, exc: Exception, stop: threading.Event) -> None:
        self._failures += 1
        delay = backoff_delay(self._failures, self._settings.imap_backoff_max_seconds)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning(
            "IMAP mailbox unavailable", error=error, failures=self._failures, retry_in=delay
        )
        try:
            mailboxes.record_error(self._db, self.address.name, error)
        except Exception as db_exc:  # the database may be what is away
            log.warning("could not record the IMAP error", error=str(db_exc))
        stop.wait(delay)


def mailbox_pollers(settings: Settings, db: Database, door: Door) -> list[MailboxPoller]:
    """One poller per configured mailbox (STAX_IMAP_URL and the file's `imap_mailboxes`)."""
    return [
        MailboxPoller(MailboxAddress.parse(url), settings, db, door, index)
        for index, url in enumerate(settings.imap_urls)
    ]


def poller_threads(
    settings: Settings, db: Database, door: Door, stop: threading.Event
) -> list[threading.Thread]:
    """What `Service` starts and joins: each poller on a thread of its own until `stop`."""
    return [
        threading.Thread(target=poller.run, args=(stop,), name=poller.name, daemon=True)
        for poller in mailbox_pollers(settings, db, door)
    ]
