"""The automatic reply as a MIME message, with the headers CONTRACT.md promises."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, Message
from email.policy import Policy
from email.utils import format_datetime

from notify.render import RenderedReply
from notify.subjects import one_line, reply_subject

STATUSES = frozenset({"imported", "duplicate", "rejected", "held"})
DISPLAY_NAME = "Stax mail import"
MAX_REFERENCES = 11  # the thread's root and the last ten (RFC 5322 §3.6.4 allows trimming)
# dot-atom "@" dot-atom, as nearly every MTA writes them. `=?` is refused although RFC 5322
# allows it: References is an unstructured header to the email library, which would decode
# an encoded word hidden in it (and its CR LF) on the way out.
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,200}@[A-Za-z0-9.-]{1,200}>")
_ANGLE_TOKEN = re.compile(r"<[^<>]{0,500}>")
_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class MessageIdListHeader(UnstructuredHeader, BaseHeader):
    """In-Reply-To and References, folded between ids with the first beside the name. The
    email library would move a long list whole to a continuation line, which parsers
    (Python's own) then read back with a leading space."""

    def fold(self, *, policy: Policy) -> str:
        limit = policy.max_line_length or 998
        lines = [f"{self.name}:"]
        for number, message_id in enumerate(str(self).split()):
            if number and len(lines[-1]) + 1 + len(message_id) > limit:
                lines.append("")
            lines[-1] += " " + message_id
        return policy.linesep.join(lines) + policy.linesep


def _reply_policy() -> Policy:
    registry = HeaderRegistry()
    registry.map_to_type("in-reply-to", MessageIdListHeader)
    registry.map_to_type("references", MessageIdListHeader)
    return email_policy.SMTP.clone(header_factory=registry)


REPLY_POLICY = _reply_policy()


@dataclass(frozen=True)
class OriginalMessage:
    """The inbound header values a reply refers to, as received (encoded words and all)."""

    subject: str = ""
    message_id: str = ""
    references: str = ""

    @classmethod
    def from_headers(cls, headers: Message | Mapping[str, str]) -> OriginalMessage:
        first: dict[str, str] = {}
        for name, value in headers.items():
            first.setdefault(str(name).lower(), str(value))
        return cls(
            first.get("subject", ""), first.get("message-id", ""), first.get("references", "")
        )

    @property
    def display_subject(self) -> str:
        """The subject as the customer's client shows it, one safe line (for templates)."""
        return one_line(self.subject)


def compose_reply(
    original: OriginalMessage,
    rendered: RenderedReply,
    import_id: int,
    status: str,
    sender_address: str,
    to: str,
    *,
    now: datetime | None = None,
) -> EmailMessage:
    """The reply, ready for a Mailer. Nothing of the inbound headers is copied raw: the
    subject is decoded, cleaned and re-encoded, and only well-formed Message-IDs are kept.
    The Subject is the contract's `Re: ` + original, whatever subject.txt rendered."""
    if status not in STATUSES:
        raise ValueError(f"not a reply status: {status!r}")
    message = EmailMessage(policy=REPLY_POLICY)
    message["From"] = Address(DISPLAY_NAME, addr_spec=_checked_address(sender_address))
    message["To"] = _checked_address(to)
    message["Subject"] = reply_subject(original.subject)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = reply_message_id(import_id, sender_address)
    _thread(message, original)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"  # asks Exchange not to answer the answer
    message["X-Stax-Import-Id"] = str(int(import_id))
    message["X-Stax-Import-Status"] = str(status)
    # Quoted-printable keeps the message 7-bit: any relay takes it, 8BITMIME or not.
    message.set_content(rendered.text, subtype="plain", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


def reply_message_id(import_id: int, sender_address: str) -> str:
    """A fresh Message-ID on the service's domain; it names the import, which helps support
    recognise answers to a confirmation even without the outbox row."""
    domain = _checked_address(sender_address).rpartition("@")[2]
    # 80 random bits make it unique; short enough that the header is never folded.
    return f"<stax-import-{int(import_id)}.{secrets.token_hex(10)}@{domain}>"


def valid_message_id(value: str) -> str | None:
    """The first `<local@domain>` in a header value when strictly well-formed, else None."""
    token = _ANGLE_TOKEN.search(value)
    candidate = token.group(0) if token else ""
    if _MESSAGE_ID.fullmatch(candidate) and "=?" not in candidate:
        return candidate
    return None


def references(original: OriginalMessage) -> list[str]:
    """The original's References plus its Message-ID: well-formed ids only, each once, the
    first and the last ten when the chain is long."""
    chain: list[str] = []
    tokens = [*_ANGLE_TOKEN.findall(original.references), original.message_id]
    for token in tokens:
        message_id = valid_message_id(token)
        if message_id and message_id not in chain:
            chain.append(message_id)
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
    return chain


def _thread(message: EmailMessage, original: OriginalMessage) -> None:
    in_reply_to = valid_message_id(original.message_id)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    chain = references(original)
    if chain:
        message["References"] = " ".join(chain)


def _checked_address(address: str) -> str:
    # Plain ASCII addresses only: what goes into To/From is never a display name or a list,
    # and SMTPUTF8 is not something every relay offers.
    candidate = address.strip().removeprefix("<").removesuffix(">")
    if not _ADDRESS.fullmatch(candidate) or "=?" in candidate or len(candidate) > 254:
        raise ValueError(f"not a plain mail address: {candidate[:80]!r}")
    return candidate
