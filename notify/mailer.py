"""Where replies go: an SMTP relay, or `.eml` files in the outbox folder (one small port)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_TIMEOUT_SECONDS = 30.0
_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_YES, _NO = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> str:
        """Hand the message on; returns a delivery id for the outbox row and ops."""
        ...


class DeliveryError(Exception):
    """The message was not handed on."""


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: a 4xx answer, a relay away, a disk full."""


class PermanentDeliveryError(DeliveryError):
    """The relay refused this message for good (5xx): retrying the same bytes will not help."""


class FileOutbox:
    """`<UTC timestamp>-<import id>-<id>.eml` files, each complete or absent.

    The name comes from the message itself (its Date and Message-ID), so sending the same
    stored reply again after a crash finds the file already there: exactly once."""

    def __init__(
        self, outbox_dir: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.outbox_dir = outbox_dir
        self._clock = clock

    def send(self, message: EmailMessage) -> str:
        name = self._name(message)
        if (self.outbox_dir / name).exists():
            return name  # written before a crash kept us from recording it
        try:
            _write_durably(self.outbox_dir, name, message.as_bytes(policy=policy.SMTP))
        except OSError as exc:
            raise TransientDeliveryError(f"outbox {self.outbox_dir}: {exc.strerror}") from exc
        return name

    def _name(self, message: EmailMessage) -> str:
        unique, stamp = _file_name_parts(message)
        stamp = stamp or self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        import_id = str(message.get("X-Stax-Import-Id", "")).strip()
        return (
            f"{stamp}-{import_id if import_id.isdigit() else 'none'}-"
            f"{unique or uuid.uuid4().hex}.eml"
        )


def _file_name_parts(message: EmailMessage) -> tuple[str | None, str]:
    message_id = str(message.get("Message-ID", "")).strip()
    unique = hashlib.sha256(message_id.encode()).hexdigest()[:24] if message_id else None
    date = message.get("Date")
    stamp = None
    if date is not None:
        with contextlib.suppress(TypeError, ValueError):
            stamp = parsedate_to_datetime(str(date)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return unique, stamp or ""


def _write_durably(directory: Path, name: str, data: bytes) -> None:
    # Temp name, fsync, rename, fsync the folder: a reader (or a crash) sees the whole file
    # or none; the leading dot keeps half-written files out of `*.eml` globs.
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_directory(directory.parent)
    temporary = directory / f".{name}.tmp"
    try:
        with open(temporary, "xb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class RelayAddress:
    """`smtp://[user:pass@]host[:port][?starttls=1]` or `smtps://…`, checked once."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or errors

    @classmethod
    def parse(cls, url: str) -> RelayAddress:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError("the relay URL must be smtp://host:port or smtps://host:port")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("the relay URL has an invalid port") from None
        starttls = _flag(parse_qs(parts.query).get("starttls", [""])[-1])
        if starttls and scheme == "smtps":
            raise ValueError("smtps:// is TLS already; starttls=1 goes with smtp://")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, scheme == "smtps", starttls, username, password)


def _flag(value: str) -> bool:
    if value.lower() in _YES | _NO:
        return value.lower() in _YES
    raise ValueError("starttls in the relay URL must be 1 or 0")


class SmtpRelay:
    """Sends through a relay; 4xx and connection trouble are transient, 5xx permanent."""

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        envelope_sender: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.relay = RelayAddress.parse(url)
        self.timeout = timeout  # per connect and per command, as smtplib applies it
        self.envelope_sender = envelope_sender  # None: the From address of each message
        self._tls_context = tls_context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> str:
        sender = self._sender(message)
        recipients = [address for _, address in getaddresses(message.get_all("To", []))]
        data = message.as_bytes(policy=policy.SMTP)
        try:
            client = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise _failure("connect", exc) from exc
        try:
            return _transaction(client, sender, recipients, data)
        except (smtplib.SMTPException, OSError) as exc:
            raise _failure("send", exc) from exc
        finally:
            _close(client)

    def _connect(self) -> smtplib.SMTP:
        relay, context = self.relay, self._tls_context
        client: smtplib.SMTP
        if relay.implicit_tls:
            client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=self.timeout)
        try:
            client.ehlo_or_helo_if_needed()
            if relay.starttls:
                client.starttls(context=context)
                client.ehlo()
            if relay.username is not None:
                client.login(relay.username, relay.password or "")
        except BaseException:
            _close(client)
            raise
        return client

    def _sender(self, message: EmailMessage) -> str:
        if self.envelope_sender is not None:
            return self.envelope_sender
        addresses = getaddresses(message.get_all("From", []))
        return addresses[0][1] if addresses else ""


def _transaction(client: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> str:
    if not recipients:
        raise PermanentDeliveryError("the message has no To address")
    _expect("MAIL FROM", client.mail(sender), {250})
    for recipient in recipients:
        _expect("RCPT TO", client.rcpt(recipient), {250, 251})
    # data() returns the answer to the final dot instead of raising on it.
    answer = _expect("DATA", client.data(data), {250})
    return f"smtp {answer}"[:200]


def _expect(command: str, reply: tuple[int, bytes], accepted: set[int]) -> str:
    code, text = reply
    answer = f"{code} {text.decode('utf-8', 'replace')}".replace("\n", " ")
    if code in accepted:
        return answer
    if 500 <= code < 600:
        raise PermanentDeliveryError(f"relay refused {command}: {answer[:200]}")
    raise TransientDeliveryError(f"relay deferred {command}: {answer[:200]}")


def _failure(stage: str, exc: BaseException) -> DeliveryError:
    # A 5xx to MAIL, RCPT or DATA judges this message. A refused login, a 5xx greeting, a
    # missing STARTTLS or a bad certificate judge our configuration or the relay: transient,
    # so replies wait in the outbox until it is fixed.
    transient = TransientDeliveryError(f"relay {stage} failed: {type(exc).__name__}: {exc}"[:200])
    configuration = (
        smtplib.SMTPAuthenticationError | smtplib.SMTPConnectError | smtplib.SMTPHeloError
    )
    if not isinstance(exc, smtplib.SMTPResponseException) or isinstance(exc, configuration):
        return transient
    if 500 <= exc.smtp_code < 600:
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
        return PermanentDeliveryError(f"relay refused: {exc.smtp_code} {text}"[:200])
    return transient


def _close(client: smtplib.SMTP) -> None:
    # After the relay said 250 to the final dot the message is its: a QUIT that fails must
    # not turn a delivery into an error (the caller would send it twice).
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def mailer_from_settings(url: str | None, outbox_dir: Path) -> Mailer:
    """STAX_OUTBOUND_SMTP_URL when set, else the file outbox under $STAX_DATA_DIR/outbox."""
    if url and url.strip():
        return SmtpRelay(url.strip())
    return FileOutbox(outbox_dir)
