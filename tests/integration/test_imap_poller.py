"""The IMAP poller against a real Dovecot on loopback (RELIABILITY.md, IMAP): waiting mail and
new mail come in once each through the door and leave the folder only once decided; `\\Seen`
hides nothing; a recreated folder is rescanned and recognised by content; failures stay put."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.accept import Accepted, Door, Envelope
from ingest.imap import ImapSession, MailboxAddress
from ingest.pipeline import ImportContext, Outcome, Pipeline
from store.inbox import load_raw
from store.queue import list_imports
from support.dovecot import Dovecot, Mailbox, running_dovecot
from support.imap_store import all_moved, eventually, health, message_ids, rows, stored
from support.mail import message
from support.service import InProcessService, settings_for

SEEN, DELETED = b"\\Seen", b"\\Deleted"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    return dovecot.mailbox()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Where the store does not matter to the promise: SQLite only."""
    return f"sqlite:///{tmp_path / 'stax-import.db'}"


def service(database_url: str, tmp_path: Path, url: str, **overrides: Any) -> InProcessService:
    values: dict[str, Any] = {
        "imap_url": url,
        "imap_timeout_seconds": 5,
        "imap_backoff_max_seconds": 0.5,
        "imap_lease_seconds": 2,
    }
    values.update(overrides)
    pipeline = values.pop("pipeline", None)
    return InProcessService(settings_for(database_url, tmp_path / "data", **values), pipeline)


def connected(svc: InProcessService, url: str) -> None:
    """Wait for the poller's first full pass over the folder."""
    eventually(
        lambda: (h := health(svc.services.db, url)) is not None and h.last_success_at,
        what="a first pass",
    )


def test_waiting_mail_is_imported_once_and_moved_unread(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    for n in range(3):
        mailbox.append(message(n))
    url = mailbox.url()
    with service(database_url, tmp_path, url) as svc:
        eventually(lambda: mailbox.count("Processed") == 3, what="the moves")
        db = svc.services.db
        eventually(lambda: all_moved(db, url, 3), what="the moves recorded")
        state = stored(db)
        entries = rows(db, url)
        mailbox_health = health(db, url)
    assert mailbox.messages("INBOX") == []
    processed = mailbox.messages("Processed")
    assert sorted(message_ids(processed)) == [f"<test-{n}@customer.example>" for n in range(3)]
    assert all(SEEN not in flags for _, flags in processed), "fetched with BODY.PEEK[] only"
    assert set(state.inbound.values()) == {1} and state.imports == 3
    assert state.sources == {"imap"} and state.statuses == {"held": 3}
    assert [(e.uid, e.status, e.moved_to) for e in entries] == [
        (uid, "moved", "Processed") for uid in (1, 2, 3)
    ]
    assert mailbox_health is not None and mailbox_health.last_uid == 3
    assert mailbox_health.failures == 0 and mailbox_health.last_error is None


def test_mail_appended_while_serving_arrives_by_idle(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    url = mailbox.url()
    # the full poll is 5 minutes away: only IDLE can bring this message in time
    with service(sqlite_url, tmp_path, url, imap_poll_seconds=300) as svc:
        connected(svc, url)
        mailbox.append(message(1))
        eventually(lambda: stored(svc.services.db).imports == 1, timeout=10, what="IDLE")
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
    assert mailbox.messages("INBOX") == []


def test_mail_arriving_while_the_poller_is_busy_is_not_missed(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """A message that arrives while the poller is not in IDLE (here: moving another one) is
    announced in the answer to that command, and never again once IDLE starts."""
    url = mailbox.url()
    busy = {"imap_poll_seconds": 300, "imap_pause_before_move_seconds": 1.5}
    with service(sqlite_url, tmp_path, url, **busy) as svc:
        connected(svc, url)
        mailbox.append(message(1))
        eventually(lambda: [i.status for i in _imports(svc)] == ["held"], what="a verdict")
        threading.Event().wait(0.5)  # the poller has claimed it and waits to move it
        mailbox.append(message(2))
        eventually(lambda: mailbox.count("Processed") == 2, timeout=15, what="moves")
        assert stored(svc.services.db).imports == 2


def test_mail_announced_as_idle_begins_is_seen_at_once(mailbox: Mailbox) -> None:
    """Mail that arrived between two commands is announced right behind IDLE's "+ idling",
    in the same read: it must not wait in a buffer for the next thing the server says."""
    session = ImapSession(MailboxAddress.parse(mailbox.url()), 5, None)
    try:
        session.select()
        mailbox.append(message(1))
        threading.Event().wait(0.6)  # past Dovecot's own notification delay
        session.idle()
        assert session.wait(3) is True
        session.idle_done()
    finally:
        session.close()


def test_a_message_a_person_has_read_is_not_hidden(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    url = mailbox.url()
    with service(sqlite_url, tmp_path, url) as svc:
        connected(svc, url)
        mailbox.append(message(1), flags=[SEEN])  # opened in a mail client before we got to it
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
        assert stored(svc.services.db).imports == 1
    [(_, flags)] = mailbox.messages("Processed")
    assert SEEN in flags  # and left as the person left it


def test_start_from_now_leaves_earlier_mail_alone(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    mailbox.append(message(1))
    url = mailbox.url()
    with service(sqlite_url, tmp_path, url, imap_start="new") as svc:
        connected(svc, url)
        mailbox.append(message(2))
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
        state = stored(svc.services.db)
    assert list(state.inbound) == ["<test-2@customer.example>"]
    assert message_ids(mailbox.messages("INBOX")) == ["<test-1@customer.example>"]


def test_a_recreated_folder_is_rescanned_and_known_mail_recognised(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """Deleting and recreating the folder starts UIDs again from 1 under a new UIDVALIDITY: the
    poller must neither skip the new mail (UID reuse) nor import a restored message twice."""
    a, b, c = message(1), message(2), message(3)
    mailbox.append(a, "Invoices")
    mailbox.append(b, "Invoices")
    url = mailbox.url("Invoices")
    with service(database_url, tmp_path, url, imap_poll_seconds=0.5) as svc:
        db = svc.services.db
        eventually(lambda: mailbox.count("Processed") == 2, what="the first moves")
        first = mailbox.uidvalidity("Invoices")
        import_of_a = {i.inbound.message_id: i.id for i in _imports(svc)}[
            "<test-1@customer.example>"
        ]

        mailbox.recreate("Invoices")
        mailbox.append(a, "Invoices")  # the same message again, say restored from a backup
        mailbox.append(c, "Invoices")  # and new mail, under UIDs the old folder had used
        second = mailbox.uidvalidity("Invoices")
        eventually(lambda: mailbox.count("Processed") == 4, what="the rescan's moves")
        eventually(lambda: all_moved(db, url, 4), what="the moves recorded")
        state = stored(db)
        entries = rows(db, url)
        mailbox_health = health(db, url)
    assert second != first
    assert mailbox.messages("Invoices") == []
    assert sorted(state.inbound) == [f"<test-{n}@customer.example>" for n in (1, 2, 3)]
    assert set(state.inbound.values()) == {1} and state.imports == 3
    after = [(e.uid, e.import_id, e.status) for e in entries if e.uidvalidity == second]
    assert len(after) == 2 and after[0] == (1, import_of_a, "moved")
    assert after[1][2] == "moved" and after[1][1] != import_of_a
    assert mailbox_health is not None and mailbox_health.uidvalidity == second


class Broken:
    name = "broken"

    def __call__(self, context: ImportContext) -> Outcome | None:
        raise RuntimeError("parser crashed")


def test_a_quarantined_import_goes_to_failed_with_its_raw_bytes_kept(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    mailbox.append(message(1))
    url = mailbox.url()
    with service(sqlite_url, tmp_path, url, pipeline=Pipeline([Broken()]), max_attempts=1) as svc:
        eventually(lambda: mailbox.count("Failed") == 1, what="the move to Failed")
        [import_] = _imports(svc)
        with svc.services.db.read() as session:
            raw = load_raw(session, import_.inbound_id)
    assert import_.status == "quarantined"
    assert raw == message(1)
    assert mailbox.messages("INBOX") == [] and mailbox.messages("Processed") == []


class Gate:
    """A step that holds every import until the test opens it."""

    name = "gate"

    def __init__(self) -> None:
        self.open = threading.Event()

    def __call__(self, context: ImportContext) -> Outcome | None:
        assert self.open.wait(30), "the test never opened the gate"
        return None


def test_mail_stays_in_the_folder_until_its_import_is_decided(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    gate = Gate()
    mailbox.append(message(1))
    url = mailbox.url()
    with service(sqlite_url, tmp_path, url, pipeline=Pipeline([gate])) as svc:
        eventually(lambda: [i.status for i in _imports(svc)] == ["processing"], what="a claim")
        eventually(lambda: [e.status for e in rows(svc.services.db, url)] == ["stored"])
        stop = threading.Event()
        stop.wait(1.5)  # more than the poller's settle interval: it must still not move it
        assert len(mailbox.messages("INBOX")) == 1 and mailbox.messages("Processed") == []
        gate.open.set()
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
    assert mailbox.messages("INBOX") == []


def test_a_message_the_door_could_not_store_is_tried_again(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    mailbox.append(message(1))
    url = mailbox.url()
    svc = service(sqlite_url, tmp_path, url, imap_poll_seconds=0.5)
    door: Door = svc.services.door
    real_accept = door.accept
    calls: list[int] = []

    def flaky_accept(raw: bytes, source: str, envelope: Envelope) -> Accepted:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database is away")
        return real_accept(raw, source, envelope)

    door.accept = flaky_accept  # type: ignore[method-assign]
    with svc:
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
        state = stored(svc.services.db)
        [entry] = rows(svc.services.db, url)
    assert len(calls) == 2 and state.imports == 1
    assert entry.attempts == 1 and entry.note is not None and "database is away" in entry.note


@pytest.mark.parametrize("with_move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
def test_a_message_another_connection_stored_is_really_moved(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, with_move: bool
) -> None:
    """Two pollers: one stores a message the other's connection has not been told of yet
    (it sat in IDLE); the other moves it once decided. Dovecot answers OK to a MOVE of such
    a UID and leaves the message where it was: the move must happen all the same."""
    if not with_move:
        monkeypatch.setattr(ImapSession, "can_move", lambda self: False)
    mailbox.append(message(1))
    session = ImapSession(MailboxAddress.parse(mailbox.url()), 5, None)
    try:
        session.select()
        mailbox.append(message(2))  # UID 2: this connection has not seen it
        assert session.move(2, "Processed") is True
        assert message_ids(mailbox.messages("Processed")) == ["<test-2@customer.example>"]
        assert message_ids(mailbox.messages("INBOX")) == ["<test-1@customer.example>"]
        # a message already gone (a person moved it) is said to be gone, not moved
        assert session.move(2, "Processed") is False
        assert mailbox.count("Processed") == 1
    finally:
        session.close()


def test_without_move_only_our_own_uids_are_expunged(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY + UID EXPUNGE: a message a person marked deleted stays until they expunge it."""
    monkeypatch.setattr(ImapSession, "can_move", lambda self: False)
    mailbox.append(message(1), flags=[DELETED])  # a person's, before we started
    url = mailbox.url()
    with service(sqlite_url, tmp_path, url, imap_start="new") as svc:
        connected(svc, url)
        mailbox.append(message(2))
        eventually(lambda: mailbox.count("Processed") == 1, what="the copy")
        eventually(lambda: mailbox.count("INBOX") == 1, what="our expunge")
    [(raw, flags)] = mailbox.messages("INBOX")
    assert raw == message(1) and DELETED in flags
    assert message_ids(mailbox.messages("Processed")) == ["<test-2@customer.example>"]


def test_several_mailboxes_each_get_a_poller(
    sqlite_url: str, tmp_path: Path, dovecot: Dovecot
) -> None:
    first, second = dovecot.mailbox(), dovecot.mailbox()
    first.append(message(1))
    second.append(message(2), "Invoices")
    with service(
        sqlite_url, tmp_path, first.url(), imap_mailboxes=(second.url("Invoices"),)
    ) as svc:
        eventually(lambda: first.count("Processed") == 1, what="the first mailbox")
        eventually(lambda: second.count("Processed") == 1, what="the second mailbox")
        assert stored(svc.services.db).imports == 2


def _imports(svc: InProcessService) -> list[Any]:
    with svc.services.db.read() as session:
        return list_imports(session)
