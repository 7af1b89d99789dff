"""One pass over an IMAP folder: store what is new through the door, move what is decided."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import structlog

from ingest.accept import Door, Envelope
from ingest.imap import ImapSession, Selected
from store import mailboxes
from store.db import Database
from store.mailboxes import Entry
from store.states import Status

log = structlog.get_logger()

NO_ENVELOPE = Envelope("", ())  # IMAP has none: the headers say who sent it and to whom


@dataclass(frozen=True)
class IntakeRules:
    processed_folder: str
    failed_folder: str
    start: str  # "all" | "new"
    max_message_bytes: int
    lease: timedelta
    pause_before_move: float = 0.0  # a test hook: the window between commit and move

    def folder_for(self, status: Status | None) -> str | None:
        """Where a stored message goes once its import is decided; None while in flight."""
        if status == Status.QUARANTINED:
            return self.failed_folder
        if status in (Status.IMPORTED, Status.DUPLICATE, Status.REJECTED, Status.HELD):
            return self.processed_folder
        return None


class MailboxIntake:
    """What the poller does on a connection. The position in the folder is (UIDVALIDITY, last
    UID) plus the ledger, never `\\Seen`; a message leaves the folder only after its import
    has been committed and decided, and a failed store is tried again on the next pass."""

    def __init__(
        self,
        db: Database,
        door: Door,
        mailbox: int,
        rules: IntakeRules,
        owner: str,
        stop: threading.Event,
    ) -> None:
        self._db, self._door, self.mailbox = db, door, mailbox
        self._rules, self._owner, self._stop = rules, owner, stop
        self._uidvalidity: int | None = None
        self._last_uid = 0  # the highest UID the last pass knew of
        self._in_flight = False  # stored messages wait for their verdict: ask the store
        # a message left unstored (in another poller's hands, or the door failed): the next
        # pass should come within a lease, not only at the next full poll
        self.recheck = False

    def run_pass(self, session: ImapSession) -> None:
        self._in_flight = self.recheck = False
        selected = session.select()
        start_after = 0 if self._rules.start == "all" else max(selected.uidnext - 1, 0)
        where = mailboxes.position(self._db, self.mailbox, selected.uidvalidity, start_after)
        if where.reset:
            log.warning(
                "UIDVALIDITY changed: rescanning the folder",
                previous=where.previous_uidvalidity,
                uidvalidity=where.uidvalidity,
            )
        self._uidvalidity = where.uidvalidity
        new = session.uids_after(where.last_uid)
        mailboxes.record_found(self._db, self.mailbox, where.uidvalidity, new)
        # a UID under the SELECT's UIDNEXT not found now is gone for good (expunged)
        self._last_uid = max([where.last_uid, selected.uidnext - 1, *new])
        entries = mailboxes.open_entries(self._db, self.mailbox, where.uidvalidity)
        present = session.present([e.uid for e in entries])
        gone = [e for e in entries if e.uid not in present]
        if gone:
            mailboxes.record_vanished(self._db, [e.id for e in gone])
            log.info("gone from the folder before we moved them", uids=[e.uid for e in gone])
        here = [e for e in entries if e.uid in present]
        self._store(session, [e for e in here if e.import_id is None])
        self._move(session, [e for e in here if e.import_id is not None])

    def news(self, selected: Selected) -> bool:
        """Does the folder hold more than the last pass knew of? (Mail that arrived while
        the poller was not in IDLE is reported in the answers to other commands, and never
        again: a SELECT just before IDLE, compared with the last pass, closes that gap.)"""
        return selected.uidvalidity != self._uidvalidity or selected.uidnext - 1 > self._last_uid

    def decided(self) -> bool:
        """Is anything stored now ready to be moved? (Checked between passes, from the store,
        only while a stored message is waiting for its verdict.)"""
        if self._uidvalidity is None or not self._in_flight:
            return False
        return mailboxes.any_decided(self._db, self.mailbox, self._uidvalidity)

    def settle(self, session: ImapSession) -> None:
        """Move what has been decided since the last pass."""
        if self._uidvalidity is None:
            return
        self._in_flight = False
        entries = mailboxes.open_entries(self._db, self.mailbox, self._uidvalidity)
        self._move(session, [e for e in entries if e.import_id is not None])

    def _store(self, session: ImapSession, entries: list[Entry]) -> None:
        sizes = session.sizes([e.uid for e in entries])
        for entry in entries:
            if self._stop.is_set():
                return
            if not self._claim(entry, mailboxes.FOUND):
                self.recheck = True  # another poller has it in hand, or has just stored it
                continue
            size = sizes.get(entry.uid, 0)
            if size > self._rules.max_message_bytes:
                self._move_unstored(session, entry, size)
                continue
            raw = session.peek(entry.uid)
            if raw is None:
                mailboxes.record_vanished(self._db, [entry.id])
                continue
            try:
                accepted = self._door.accept(raw, "imap", NO_ENVELOPE)
            except Exception as exc:  # this message only: keep it, try again next pass
                error = f"{type(exc).__name__}: {exc}"
                mailboxes.record_failure(self._db, entry.id, error)
                self.recheck = True
                log.warning("could not store; will try again", uid=entry.uid, error=error)
                continue
            mailboxes.record_stored(self._db, entry.id, accepted.import_id)
            self._in_flight = True
            log.info(
                "stored from IMAP",
                uid=entry.uid,
                import_id=accepted.import_id,
                already_held=not accepted.created,
            )

    def _move(self, session: ImapSession, entries: list[Entry]) -> None:
        for entry in entries:
            folder = self._rules.folder_for(entry.import_status)
            if folder is None or self._stop.is_set():
                self._in_flight = True
                continue
            if not self._claim(entry, mailboxes.STORED):
                self._in_flight = True  # another poller's, or a dead one's until its lease ends
                continue
            if self._rules.pause_before_move:
                log.info(
                    "pausing between commit and move", uid=entry.uid, import_id=entry.import_id
                )
                if self._stop.wait(self._rules.pause_before_move):
                    return
            if not session.move(entry.uid, folder):
                mailboxes.record_vanished(self._db, [entry.id])
                log.info("gone from the folder before we moved it", uid=entry.uid)
                continue
            mailboxes.record_moved(self._db, entry.id, folder)
            log.info("moved", uid=entry.uid, import_id=entry.import_id, folder=folder)

    def _claim(self, entry: Entry, status: str) -> bool:
        return mailboxes.claim(self._db, entry.id, status, self._owner, self._rules.lease)

    def _move_unstored(self, session: ImapSession, entry: Entry, size: int) -> None:
        """Over the size limit: never stored, so never deleted; moved aside for a person."""
        note = f"{size} bytes, over the {self._rules.max_message_bytes}-byte limit"
        if not session.move(entry.uid, self._rules.failed_folder):
            mailboxes.record_vanished(self._db, [entry.id])
            return
        mailboxes.record_moved(self._db, entry.id, self._rules.failed_folder, note=note)
        log.warning("too large to import: moved aside", uid=entry.uid, size=size)
