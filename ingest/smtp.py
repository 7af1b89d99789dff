"""The SMTP listener (aiosmtpd): SMTP reply codes live here and nowhere else."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession

from ingest import metrics
from ingest.accept import Envelope, Incoming
from ingest.group_commit import GroupCommitter
from ingest.recipients import RecipientPolicy

log = structlog.get_logger()

OK = "250 2.0.0 OK: queued as import {import_id}"
OK_RCPT = "250 2.1.5 OK"
UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here: send imports to the import address"
TOO_BIG = "552 5.3.4 Message too big for this service"
TOO_MANY_SESSIONS = b"421 4.3.2 Too many connections, try again later\r\n"
SHUTTING_DOWN = b"421 4.3.2 Service shutting down, try again later\r\n"
# RFC 5321: a 4xx after DATA makes the client keep the message and retry; no details leak.
TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, try again later"

# aiosmtpd's own 552 texts carry no enhanced status code; we replace them at the wire.
_AIOSMTPD_TOO_BIG = ("552 Error: message size exceeds", "552 Error: Too much mail data")

# Lines longer than RFC 5322's 998 octets are common in real mail (Outlook HTML); bouncing
# them would lose a customer's invoice, so allow long lines up to this bound instead.
LONG_LINE_LIMIT = 1024 * 1024


class SessionGate:
    """Counts live sessions so that the listener can refuse the one too many."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active: set[ImportSMTP] = set()

    def admit(self, session: ImportSMTP) -> bool:
        if len(self.active) >= self.limit:
            return False
        self.active.add(session)
        return True


class ImportSMTP(SMTP):
    """aiosmtpd's SMTP with a session limit, enhanced status codes and lenient line lengths."""

    line_length_limit = LONG_LINE_LIMIT

    def __init__(self, handler: IntakeHandler, gate: SessionGate, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit(self):
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_SESSIONS)
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._gate.active.discard(self)
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return None if self._refused else super().eof_received()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    async def push(self, status: Any) -> None:
        text = status.decode() if isinstance(status, bytes) else status
        if text.startswith(_AIOSMTPD_TOO_BIG):
            status = TOO_BIG
        await super().push(status)

    def close_for_shutdown(self) -> None:
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(SHUTTING_DOWN)
            transport.close()


class IntakeHandler:
    """aiosmtpd hooks: who may receive, and 250 only once the message is committed."""

    def __init__(self, committer: GroupCommitter, recipients: RecipientPolicy) -> None:
        self._committer = committer
        self._recipients = recipients
        self.in_flight = 0

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        known = self._recipients.accepts_at_sight(address)
        if known is None:  # a plus-address: its token is looked up in the database
            loop = asyncio.get_running_loop()
            known = await loop.run_in_executor(None, self._recipients.accepts, address)
        if not known:
            return UNKNOWN_RECIPIENT
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or b""
        incoming = Incoming(
            raw, "smtp", Envelope(envelope.mail_from or "", tuple(envelope.rcpt_tos))
        )
        self.in_flight += 1
        started = time.monotonic()
        try:
            accepted = await self._committer.submit(incoming)
            metrics.observe_intake(time.monotonic() - started)
        except Exception:
            log.exception("could not store a message; answered 451")
            return TEMPORARY_FAILURE
        finally:
            self.in_flight -= 1
        return OK.format(import_id=accepted.import_id)

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session fault; answered 451", error_type=type(error).__name__)
        return TEMPORARY_FAILURE


class SmtpListener:
    """Binds the listener on the running loop; stops by refusing new sessions, letting the
    messages being committed get their 250, then closing what is left with a 421."""

    def __init__(
        self,
        handler: IntakeHandler,
        host: str,
        port: int,
        max_sessions: int,
        max_message_bytes: int,
        session_timeout: float,
        hostname: str,
    ) -> None:
        self._handler = handler
        self._host, self._port = host, port
        self._gate = SessionGate(max_sessions)
        self._options: dict[str, Any] = {
            "data_size_limit": max_message_bytes,
            "enable_SMTPUTF8": True,
            "decode_data": False,
            "hostname": hostname,  # explicit: getfqdn() would do a DNS lookup per session
            "timeout": session_timeout,
            "ident": "Stax mail import",
        }
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> ImportSMTP:
            return ImportSMTP(self._handler, self._gate, loop=loop, **self._options)

        self._server = await loop.create_server(factory, self._host, self._port)
        log.info("smtp listening", host=self._host, port=self.port)

    async def stop(self, grace: float = 30.0) -> None:
        if self._server is None:
            return
        self._server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self._handler.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self._gate.active):
            session.close_for_shutdown()
        await self._server.wait_closed()
        log.info("smtp stopped")
