"""The SMTP listener over real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from store.accounts import add_account
from store.models import InboundMessage
from store.queue import list_imports
from support.mail import IMPORT_ADDRESS, deliver, message
from support.service import InProcessService, settings_for


@pytest.fixture
def service_factory(database_url: str, tmp_path: Path) -> Iterator[Any]:
    running: list[InProcessService] = []

    def start(**overrides: Any) -> InProcessService:
        service = InProcessService(settings_for(database_url, tmp_path / "data", **overrides))
        running.append(service.__enter__())
        return service

    yield start
    for service in running:
        service.__exit__(None, None, None)


def stored_message_ids(service: InProcessService) -> list[str]:
    with service.services.db.read() as session:
        return [i.inbound.message_id for i in list_imports(session, limit=10_000)]


def test_forty_messages_from_eight_sessions_are_each_stored_once(service_factory: Any) -> None:
    service = service_factory()

    def session(first: int) -> list[tuple[int, bytes]]:
        answers = []
        with smtplib.SMTP("127.0.0.1", service.port, timeout=30) as client:
            client.ehlo("client.example")
            for n in range(first, first + 5):
                client.mail("finance@customer.example")
                client.rcpt(IMPORT_ADDRESS)
                answers.append(client.data(message(n)))
        return answers

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(session, range(0, 40, 5)) for a in batch]
    assert [code for code, _ in answers] == [250] * 40
    assert all(b"queued as import" in text for _, text in answers)
    ids = stored_message_ids(service)
    assert sorted(ids) == sorted(f"<test-{n}@customer.example>" for n in range(40))


def test_a_redelivered_message_is_kept_once(service_factory: Any) -> None:
    service = service_factory()
    raw = message(1)
    first = deliver(service.port, raw)
    second = deliver(service.port, raw)
    assert first[0] == second[0] == 250
    assert first[1] == second[1]  # the same import id both times
    assert stored_message_ids(service) == ["<test-1@customer.example>"]


def test_unknown_recipients_get_550_at_rcpt(service_factory: Any) -> None:
    service = service_factory()
    strangers = [
        "someone@stax.localhost",
        "import@other.example",
        "import+nosuchtoken@stax.localhost",
    ]
    for rcpt in strangers:
        code, text = deliver(service.port, message(2), rcpt=rcpt)
        assert code == 550 and text.startswith(b"5.1.1"), rcpt
    assert stored_message_ids(service) == []


def test_the_import_address_in_any_case_and_an_account_plus_address_are_accepted(
    service_factory: Any,
) -> None:
    service = service_factory()
    with service.services.db.write() as session:
        token = add_account(session, "acme", ["finance@acme.example"], []).token
    assert deliver(service.port, message(3), rcpt="Import@STAX.localhost")[0] == 250
    assert deliver(service.port, message(4), rcpt=f"import+{token}@stax.localhost")[0] == 250


def test_size_is_advertised_and_larger_messages_get_552(service_factory: Any) -> None:
    service = service_factory(smtp_max_message_bytes=10_000)
    with smtplib.SMTP("127.0.0.1", service.port, timeout=30) as client:
        client.ehlo("client.example")
        assert client.has_extn("size") and client.esmtp_features["size"] == "10000"
        # declared too big in MAIL FROM
        code, text = client.mail("a@customer.example", ["SIZE=20000"])
        assert (code, text[:5]) == (552, b"5.3.4")
        # not declared, but too big when it arrives
        client.rset()
        client.mail("a@customer.example")
        client.rcpt(IMPORT_ADDRESS)
        code, text = client.data(message(5, size=30_000))
        assert (code, text[:5]) == (552, b"5.3.4")
        # the session goes on, and a message within the limit is taken
        client.mail("a@customer.example")
        client.rcpt(IMPORT_ADDRESS)
        assert client.data(message(6, size=1_000))[0] == 250
    assert stored_message_ids(service) == ["<test-6@customer.example>"]


def test_the_session_beyond_the_limit_gets_421(service_factory: Any) -> None:
    service = service_factory(smtp_max_sessions=3)
    held = [smtplib.SMTP("127.0.0.1", service.port, timeout=10) for _ in range(3)]
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as extra:
            greeting = extra.recv(200)
        assert greeting.startswith(b"421 4.3.2")
    finally:
        for client in held:
            client.quit()
    # once sessions end, new ones are welcome again
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, _ = deliver(service.port, message(7))
        if code == 250:
            break
        time.sleep(0.1)
    assert code == 250


def _break_table(service: InProcessService, table: str, new_name: str) -> None:
    with service.services.db.write() as session:
        session.execute(text(f"ALTER TABLE {table} RENAME TO {new_name}"))


def test_a_storage_fault_during_data_is_451_without_details(service_factory: Any) -> None:
    service = service_factory()
    _break_table(service, "inbound_messages", "inbound_messages_away")
    code, text = deliver(service.port, message(8))
    assert code == 451 and text.startswith(b"4.3.0")
    assert b"inbound_messages" not in text and b"Error" not in text
    _break_table(service, "inbound_messages_away", "inbound_messages")
    # the sender's MTA retries, and now the message is taken
    assert deliver(service.port, message(8))[0] == 250
    with service.services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_a_fault_in_a_session_hook_is_451_not_500(service_factory: Any) -> None:
    service = service_factory()
    _break_table(service, "accounts", "accounts_away")
    code, text = deliver(service.port, message(9), rcpt="import+0123abcd@stax.localhost")
    assert code == 451 and text.startswith(b"4.3.0")
    assert b"accounts" not in text
    _break_table(service, "accounts_away", "accounts")
