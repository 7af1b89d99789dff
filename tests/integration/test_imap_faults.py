"""The IMAP poller through faults, against a real Dovecot on loopback (RELIABILITY.md, IMAP):
a `serve` killed between commit and move, two service processes on one mailbox, a connection
reset or a stall mid-fetch, a server that is down, and TLS with a certificate we trust."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ingest.accept import Accepted, Door, Envelope
from store.db import Database
from store.models import ImapMailbox, Import
from support.dovecot import Dovecot, Mailbox, running_dovecot
from support.imap_store import all_moved, eventually, health, message_ids, rows, stored
from support.mail import IMPORT_ADDRESS, deliver, message
from support.service import ChildService, InProcessService, free_port, settings_for
from support.tcp_proxy import FaultyProxy

BIG = 300_000  # bytes: a fetch long enough to be cut in the middle
CUT_AFTER = 100_000  # bytes from the server: well past the greeting, login and SELECT
SIGNS = {"cut": ("ConnectionResetError", "EOF"), "stall": ("timed out",)}  # in the last error


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


def child(database_url: str, data_dir: Path, log: Path, url: str, **env: str) -> ChildService:
    values = {
        "STAX_DATA_DIR": str(data_dir),
        "STAX_DATABASE_URL": database_url,
        "STAX_SMTP_PORT": str(free_port()),
        "STAX_WORKERS": "1",
        "STAX_WORKER_IDLE_POLL_SECONDS": "0.1",
        "STAX_IMAP_URL": url,
        "STAX_IMAP_TIMEOUT_SECONDS": "5",
        "STAX_IMAP_BACKOFF_MAX_SECONDS": "0.5",
        "STAX_IMAP_LEASE_SECONDS": "2",
        "STAX_IMAP_POLL_SECONDS": "1",
    }
    values.update(env)
    return ChildService(values, log)


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def in_process(database_url: str, tmp_path: Path, url: str, **overrides: Any) -> InProcessService:
    values: dict[str, Any] = {
        "imap_url": url,
        "imap_timeout_seconds": 5,
        "imap_backoff_max_seconds": 0.5,
    }
    values.update(overrides)
    return InProcessService(settings_for(database_url, tmp_path / "data", **values))


def test_a_kill_between_commit_and_move_leaves_the_move_for_next_time(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    mailbox.append(message(1))
    mailbox.append(message(2))
    url = mailbox.url()
    log = tmp_path / "serve.log"
    # the test hook holds the poller between the commit (and verdict) and the first move
    first = child(
        database_url, tmp_path / "data", log, url, STAX_IMAP_PAUSE_BEFORE_MOVE_SECONDS="60"
    )
    first.start()
    try:
        eventually(
            lambda: any(e["event"] == "pausing between commit and move" for e in events(log)),
            what="the pause before the move",
        )
    finally:
        first.kill()  # SIGKILL, holding a claim on the first message
    # the service again, in this process, on the same data; its door counts what it is given
    second = in_process(database_url, tmp_path, url, imap_lease_seconds=2)
    given = _count_calls(second.services.door)
    db = second.services.db
    assert stored(db).imports == 2  # committed...
    assert len(mailbox.messages("INBOX")) == 2  # ...but not moved (before `second` starts)
    with second:
        eventually(lambda: mailbox.count("Processed") == 2, what="the moves")
        eventually(lambda: all_moved(db, url, 2), what="the moves recorded")
        state = stored(db)
        entries = rows(db, url)
    assert mailbox.messages("INBOX") == []
    assert set(state.inbound.values()) == {1} and state.imports == 2
    assert [(e.status, e.moved_to) for e in entries] == [("moved", "Processed")] * 2
    assert given == [], "the second run fetched and stored again what the first had stored"


def test_two_pollers_on_one_mailbox_import_each_message_once(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """Two processes: `serve` as a child, and the service in this process."""
    waiting, arriving = range(4), range(4, 24)
    expected = sorted(f"<test-{n}@customer.example>" for n in range(24))
    for n in waiting:
        mailbox.append(message(n))
    url = mailbox.url()
    log = tmp_path / "serve.log"
    other = child(database_url, tmp_path / "data", log, url)
    other.start()
    try:
        with in_process(database_url, tmp_path, url, imap_lease_seconds=2) as svc:
            given = _count_calls(svc.services.door)
            eventually(lambda: _connected(svc.services.db, url), what="both pollers")
            # a burst while both are in IDLE: both are told of each message at once
            mailbox.append_many([message(n) for n in arriving])
            try:
                eventually(lambda: mailbox.count("Processed") == 24, timeout=30, what="moves")
            except AssertionError:
                _explain(svc.services.db, url, log, mailbox)
                raise
            eventually(lambda: all_moved(svc.services.db, url, 24), what="the moves recorded")
            state = stored(svc.services.db)
            entries = rows(svc.services.db, url)
        assert other.terminate() == 0
    finally:
        if other.process is not None and other.process.poll() is None:
            other.kill()
    assert sorted(state.inbound) == expected
    assert set(state.inbound.values()) == {1} and state.imports == 24
    assert len(entries) == 24 and {e.status for e in entries} == {"moved"}
    assert sorted(message_ids(mailbox.messages("Processed"))) == expected  # each moved once
    assert mailbox.messages("INBOX") == []
    by_child = Counter(e["event"] for e in events(log))["stored from IMAP"]
    print(f"\nstored: {by_child} by the child, {len(given)} by this process")


def _explain(db: Database, url: str, log: Path, mailbox: Mailbox) -> None:
    """What a failure report needs from both processes: the server's folders, the ledger,
    the imports, the child's last log lines (pytest captures the in-process log already)."""
    for folder in ("INBOX", "Processed"):
        ids = message_ids(mailbox.messages(folder))
        print(f"{folder}: {mailbox.count(folder)} messages, {len(ids)} fetched: {sorted(ids)}")
    server_log = mailbox.server.dir / "dovecot.log"
    if server_log.exists():
        print("dovecot.log, last 40 lines:")
        print("\n".join(server_log.read_text(errors="replace").splitlines()[-40:]))
    print("ledger (uid status import claimed_by claimed_until note):")
    for e in rows(db, url):
        print(f"  {e.uid} {e.status} {e.import_id} {e.claimed_by} {e.claimed_until} {e.note}")
    with db.read() as session:
        for i in session.scalars(select(Import).order_by(Import.id)):
            print(f"  import {i.id} {i.status} attempts={i.attempts} lease={i.lease_until}")
    print("the child's log, last 80 lines:")
    print("\n".join(log.read_text(errors="replace").splitlines()[-80:]))


def _count_calls(door: Door) -> list[bytes]:
    """Wrap the door's `accept`: the raw messages it is given, in order."""
    given: list[bytes] = []
    real = door.accept

    def counting(raw: bytes, source: str, envelope: Envelope) -> Accepted:
        given.append(raw)
        return real(raw, source, envelope)

    door.accept = counting  # type: ignore[method-assign]
    return given


def _recovered(db: Database, url: str) -> ImapMailbox | None:
    """The mailbox's health once a pass has succeeded since the last failure."""
    h = health(db, url)
    return h if h is not None and h.failures == 0 and h.last_success_at is not None else None


def _connected(db: Database, url: str) -> bool:
    """Both pollers have made a pass: the child's stores came in, and ours too."""
    h = health(db, url)
    return h is not None and h.last_success_at is not None and len(rows(db, url)) >= 4


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_a_connection_cut_or_stalled_mid_fetch_is_retried(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox, dovecot: Dovecot, fault: Any
) -> None:
    mailbox.append(message(1, size=BIG))
    with FaultyProxy(dovecot.port, fault, after_bytes=CUT_AFTER) as proxy:
        url = mailbox.url(port=proxy.port)
        # a stall is noticed when a read has waited imap_timeout_seconds
        with in_process(sqlite_url, tmp_path, url, imap_timeout_seconds=1.5) as svc:
            eventually(lambda: mailbox.count("Processed") == 1, what="the move")
            db = svc.services.db
            state = stored(db)
            mailbox_health = eventually(lambda: _recovered(db, url), what="a success recorded")
    assert proxy.faults == 1 and proxy.connections >= 2
    assert mailbox.messages("INBOX") == []
    assert list(state.inbound.values()) == [1] and state.imports == 1
    assert mailbox_health is not None and mailbox_health.last_error is not None
    assert any(sign in mailbox_health.last_error for sign in SIGNS[fault])
    assert mailbox_health.failures == 0 and mailbox_health.last_success_at is not None


def test_a_server_that_is_down_is_logged_and_recorded_then_read_when_back(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox, dovecot: Dovecot
) -> None:
    mailbox.append(message(1))
    port = free_port()  # nothing listens here yet
    url = mailbox.url(port=port)
    with in_process(sqlite_url, tmp_path, url) as svc:
        db = svc.services.db
        eventually(lambda: (h := health(db, url)) is not None and h.failures >= 2, what="errors")
        # the rest of the service carries on
        assert deliver(svc.port, message(2), rcpt=IMPORT_ADDRESS)[0] == 250
        down = health(db, url)
        with FaultyProxy(dovecot.port, "cut", after_bytes=10**9, port=port):
            eventually(lambda: mailbox.count("Processed") == 1, what="the move")
            back = eventually(lambda: _recovered(db, url), what="a success recorded")
        state = stored(db)
    assert down is not None and down.last_success_at is None
    assert down.last_error is not None and "ConnectionRefused" in down.last_error
    assert back is not None and back.failures == 0 and back.last_success_at is not None
    assert state.sources == {"smtp", "imap"} and state.imports == 2


def test_imaps_with_a_self_signed_certificate_the_service_is_told_to_trust(
    sqlite_url: str, tmp_path: Path, mailbox: Mailbox, dovecot: Dovecot
) -> None:
    mailbox.append(message(1))
    url = mailbox.url(tls=True)
    with in_process(sqlite_url, tmp_path, url) as svc:  # not trusted: refused, nothing read
        db = svc.services.db
        eventually(lambda: (h := health(db, url)) is not None and h.failures >= 1, what="errors")
        untrusted = health(db, url)
    assert untrusted is not None and untrusted.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
    assert len(mailbox.messages("INBOX")) == 1

    with in_process(sqlite_url, tmp_path, url, imap_ca_file=dovecot.ca_file) as svc:
        eventually(lambda: mailbox.count("Processed") == 1, what="the move")
        assert stored(svc.services.db).imports == 1
    assert mailbox.messages("INBOX") == []
