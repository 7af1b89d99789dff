"""Replies leave through a real SMTP relay on loopback (an aiosmtpd sink) or as `.eml` files:
delivered, deferred (4xx, nobody listening, a silent server) or refused (5xx)."""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notify.compose import OriginalMessage, compose_reply
from notify.mailer import (
    FileOutbox,
    PermanentDeliveryError,
    SmtpRelay,
    TransientDeliveryError,
    mailer_from_settings,
)
from notify.render import RenderedReply

SERVICE = "import@stax.localhost"
CUSTOMER = "finance@customer.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reply(import_id: int = 42) -> EmailMessage:
    rendered = RenderedReply("Re: Mistral import", "Imported — 1,234.56 EUR\n", "<p>Imported</p>\n")
    original = OriginalMessage("Mistral import — août", "<orig@customer.example>")
    return compose_reply(original, rendered, import_id, "imported", SERVICE, CUSTOMER)


@dataclass
class Sink:
    """An SMTP server that answers as told and keeps what it accepted."""

    rcpt_answer: str = "250 OK"
    data_answer: str = "250 2.0.0 Ok: queued as SINK1"
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.rcpt_answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer.startswith("250"):
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return self.data_answer

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret:/@"
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def start_sink() -> Iterator[Any]:
    running: list[Controller] = []

    def start(sink: Sink, **options: Any) -> int:
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port, **options)
        controller.start()
        running.append(controller)
        return port

    yield start
    for controller in running:
        controller.stop()


def test_the_file_outbox_writes_one_complete_parsable_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "var" / "outbox"  # created on first use
    clock = lambda: datetime(2026, 11, 2, 9, 30, 5, 123456, tzinfo=UTC)  # noqa: E731
    message = reply(42)
    name = FileOutbox(outbox, clock).send(message)
    # named from the reply's own Date and Message-ID, so a resend finds it
    assert re.fullmatch(r"\d{8}T\d{6}Z-42-[0-9a-f]{24}\.eml", name)
    assert [p.name for p in outbox.iterdir()] == [name]  # no temporary file left behind
    assert FileOutbox(outbox, clock).send(message) == name  # sent again after a crash: once
    assert [p.name for p in outbox.iterdir()] == [name]
    raw = (outbox / name).read_bytes()
    assert b"\r\n" in raw and max(raw) < 128
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["Subject"] == "Re: Mistral import — août"
    assert parsed["X-Stax-Import-Id"] == "42"


def test_two_replies_in_the_same_microsecond_are_two_files(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path, lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assert outbox.send(reply(1)) != outbox.send(reply(1))
    assert len(list(tmp_path.glob("*.eml"))) == 2


def test_an_outbox_that_cannot_be_written_is_a_transient_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(TransientDeliveryError, match="outbox"):
        FileOutbox(blocker).send(reply())


def test_the_relay_delivers_to_the_recipient_from_the_service(start_sink: Any) -> None:
    sink = Sink()
    port = start_sink(sink)
    message = reply()
    delivery = SmtpRelay(f"smtp://127.0.0.1:{port}", timeout=10).send(message)
    assert delivery == "smtp 250 2.0.0 Ok: queued as SINK1"
    [(mail_from, rcpt_tos, content)] = sink.received
    assert (mail_from, rcpt_tos) == (SERVICE, [CUSTOMER])
    parsed = message_from_bytes(content, policy=policy.default)
    assert parsed["Message-ID"] == message["Message-ID"]
    assert parsed["In-Reply-To"] == "<orig@customer.example>"
    assert parsed.get_content_type() == "multipart/alternative"


def test_the_envelope_sender_may_be_set(start_sink: Any) -> None:
    sink = Sink()
    port = start_sink(sink)
    SmtpRelay(f"smtp://127.0.0.1:{port}", envelope_sender="").send(reply())
    assert sink.received[0][0] == "<>"


@pytest.mark.parametrize(
    ("sink", "error"),
    [
        (Sink(data_answer="451 4.3.0 Try again later"), TransientDeliveryError),
        (Sink(data_answer="550 5.7.1 Refused"), PermanentDeliveryError),
        (Sink(rcpt_answer="450 4.2.1 Mailbox busy"), TransientDeliveryError),
        (Sink(rcpt_answer="550 5.1.1 No such user"), PermanentDeliveryError),
        (Sink(data_answer="421 4.3.2 Shutting down"), TransientDeliveryError),
    ],
)
def test_relay_answers_decide_transient_or_permanent(
    start_sink: Any, sink: Sink, error: type[Exception]
) -> None:
    port = start_sink(sink)
    with pytest.raises(error) as raised:
        SmtpRelay(f"smtp://127.0.0.1:{port}", timeout=10).send(reply())
    assert re.search(r"\b[45]\d\d\b", str(raised.value))
    assert sink.received == []


def test_nobody_listening_is_transient() -> None:
    with pytest.raises(TransientDeliveryError):
        SmtpRelay(f"smtp://127.0.0.1:{free_port()}", timeout=5).send(reply())


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the connection is accepted by the kernel; no greeting ever comes
        relay = SmtpRelay(f"smtp://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        with pytest.raises(TransientDeliveryError):
            relay.send(reply())


def test_login_with_url_credentials(start_sink: Any) -> None:
    sink = Sink()
    port = start_sink(sink, authenticator=sink.authenticate, auth_require_tls=False)
    SmtpRelay(f"smtp://stax%40relay:s3cret%3A%2F%40@127.0.0.1:{port}").send(reply())
    assert sink.logins == [(b"stax@relay", b"s3cret:/@")]
    assert len(sink.received) == 1


def test_a_refused_login_is_transient_and_keeps_the_password_out(start_sink: Any) -> None:
    sink = Sink()
    port = start_sink(sink, authenticator=sink.authenticate, auth_require_tls=False)
    with pytest.raises(TransientDeliveryError) as raised:
        SmtpRelay(f"smtp://stax:wrong-pass@127.0.0.1:{port}").send(reply())
    assert "wrong-pass" not in str(raised.value)
    assert sink.received == []


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the TLS tests")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*certificate)
    return server, ssl.create_default_context(cafile=str(certificate[0]))


def test_starttls(start_sink: Any, certificate: tuple[Path, Path]) -> None:
    server, client = contexts(certificate)
    sink = Sink()
    port = start_sink(sink, tls_context=server, require_starttls=True)
    SmtpRelay(f"smtp://127.0.0.1:{port}?starttls=1", tls_context=client).send(reply())
    assert len(sink.received) == 1


def test_implicit_tls(start_sink: Any, certificate: tuple[Path, Path]) -> None:
    server, client = contexts(certificate)
    sink = Sink()
    port = start_sink(sink, ssl_context=server)
    SmtpRelay(f"smtps://127.0.0.1:{port}", tls_context=client).send(reply())
    assert len(sink.received) == 1


def test_an_untrusted_certificate_is_transient(
    start_sink: Any, certificate: tuple[Path, Path]
) -> None:
    server, _ = contexts(certificate)
    sink = Sink()
    port = start_sink(sink, tls_context=server, require_starttls=True)
    with pytest.raises(TransientDeliveryError):
        SmtpRelay(f"smtp://127.0.0.1:{port}?starttls=1", timeout=10).send(reply())
    assert sink.received == []


def test_mailer_from_settings(tmp_path: Path) -> None:
    assert isinstance(mailer_from_settings(None, tmp_path), FileOutbox)
    assert isinstance(mailer_from_settings("  ", tmp_path), FileOutbox)
    relay = mailer_from_settings("smtp://127.0.0.1:2526", tmp_path)
    assert isinstance(relay, SmtpRelay) and relay.relay.port == 2526
