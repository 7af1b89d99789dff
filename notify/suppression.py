"""Whether an inbound message may get an automatic reply (RFC 3834), and to which address."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from email.message import Message
from email.utils import getaddresses

from notify.subjects import one_line

Headers = Message | Mapping[str, str]
Fields = dict[str, list[str]]  # lower-case field name -> every value, in order

# Local parts that are robots or lists, never a person who wants an answer (RFC 3834 §3.1
# and list conventions: Mailman's -bounces/-request/owner-, VERP bounce addresses).
_ROBOT_LOCAL = re.compile(
    r"^(?:mailer-daemon|postmaster|listserv|majordomo"
    r"|no[-_.]?reply.*|do[-_.]?not[-_.]?reply.*|owner-.+|bounces?.*"
    r"|.+-request|.+-bounces?)$",
    re.IGNORECASE,
)
# Subjects of auto-replies that carry no Auto-Submitted header (Apple Mail, older Exchange and
# Lotus, some vacation scripts), and of bounces from MTAs that do not send multipart/report.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|answer)\b|auto\s*:|autoreply|autoresponse"
    r"|r\u00e9ponse\s+automatique|absence\b|abwesenheit|automatische\s+antwort"
    r"|respuesta\s+autom\u00e1tica|risposta\s+automatica|automatisch\s+antwoord"
    r"|undeliverable\s*:|undelivered\s+mail|delivery\s+status\s+notification"
    r"|mail\s+delivery\s+(?:failed|failure|system)|returned\s+mail\b)"
    r"|\bout\s+of\s+(?:the\s+)?office\b",
    re.IGNORECASE,
)
_AUTO_REPLY_FLAGS = ("x-autoreply", "x-autorespond", "x-auto-reply", "x-autoresponder")
_LIST_FIELDS = ("mailing-list", "x-mailing-list", "x-loop")
_BULK = frozenset({"bulk", "list", "junk"})
# Our own replies carry it: one coming back (a forward, a misrouted bounce) is never answered.
_OWN_MARK = "x-stax-import-id"


def auto_reply_refusal(
    headers: Headers, envelope_from: str | None, own_addresses: Collection[str]
) -> str | None:
    """None when an automatic reply may be sent, else why not (for ops, not the customer).

    `envelope_from` is the MAIL FROM as received ("" or "<>" is the null reverse-path);
    None when the source has no envelope (`ingest`, IMAP): the Return-Path header stands in.
    """
    fields = _fields(headers)
    envelope = _envelope(fields, envelope_from)
    for rule in _RULES:
        reason = rule(fields, envelope, own_addresses)
        if reason is not None:
            return reason
    return None


def reply_target(headers: Headers, envelope_from: str | None) -> str | None:
    """Where an automatic reply goes: the envelope sender (RFC 3834 §4), else the From
    address; None for a null reverse-path or when no usable address is left.

    The service answers the authenticated sender (CONTRACT.md), which the caller knows and
    passes to compose; this helper is for when it has nothing better.
    """
    fields = _fields(headers)
    envelope = _envelope(fields, envelope_from)
    if envelope is not None and _is_null(envelope):
        return None
    found = _address(envelope or "")
    if found:
        return found
    from_values = fields.get("from", [])
    return _address(_addresses(from_values)[0]) if from_values else None


def _fields(headers: Headers) -> Fields:
    items = headers.items()
    fields: Fields = {}
    for name, value in items:
        fields.setdefault(str(name).lower(), []).append(str(value))
    return fields


def _first(fields: Fields, name: str) -> str:
    values = fields.get(name)
    return one_line(values[0], limit=200) if values else ""


def _address(value: str) -> str | None:
    """A bare `local@domain` with nothing odd in it, or None."""
    address = value.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or len(address) > 254:
        return None
    if any(c.isspace() or c in '<>,;"()[]\\' or ord(c) < 0x20 for c in address):
        return None
    return f"{local}@{domain.lower()}"


def _addresses(values: list[str]) -> list[str]:
    return [address for _, address in getaddresses(values)] or [""]


def _mailbox(address: str) -> tuple[str, str]:
    """(local part without +tag, domain), lower-case: one mailbox whatever the tag."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return local.partition("+")[0], domain


def _envelope(fields: Fields, envelope_from: str | None) -> str | None:
    if envelope_from is not None:
        return envelope_from
    return _first(fields, "return-path") or None  # an MTA's record of MAIL FROM, if any


def _is_null(envelope: str) -> bool:
    return envelope.replace(" ", "") in ("", "<>")


def _null_sender(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    if envelope is not None and _is_null(envelope):
        return "null reverse-path"
    if _is_null(_first(fields, "return-path")) and "return-path" in fields:
        return "Return-Path: <>"
    return None


def _auto_submitted(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    value = _first(fields, "auto-submitted")
    if value and value.split(";")[0].strip().lower() != "no":
        return f"Auto-Submitted: {value[:60]}"
    for name in _AUTO_REPLY_FLAGS:
        if name in fields:
            return f"{name} header present"
    suppress = _first(fields, "x-auto-response-suppress").lower()
    tokens = {token.strip() for token in suppress.split(",")}
    if tokens & {"all", "autoreply"}:
        return "X-Auto-Response-Suppress: " + suppress[:60]
    return None


def _bulk_or_list(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    for name in ("precedence", "x-precedence"):
        if _first(fields, name).lower() in _BULK:
            return f"{name}: {_first(fields, name).lower()}"
    for name in fields:
        if name.startswith("list-") or name in _LIST_FIELDS:
            return f"list header {name}"
    return None


def _report_or_bounce(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    content_type = _first(fields, "content-type").lower()
    if content_type.startswith("multipart/report"):
        return "a delivery or disposition report (multipart/report)"
    if "x-failed-recipients" in fields:
        return "a bounce (X-Failed-Recipients)"
    if _OWN_MARK in fields:
        return "one of our own replies (X-Stax-Import-Id)"
    return None


def _auto_subject(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    subject = _first(fields, "subject")
    if _AUTO_SUBJECT.search(subject):
        return f"an auto-reply by its subject: {subject[:60]}"
    return None


def _robot_or_own(fields: Fields, envelope: str | None, own: Collection[str]) -> str | None:
    ours = {_mailbox(address) for address in own}
    senders = [envelope or "", *_addresses(fields.get("from", []))]
    for address in filter(None, (a.strip().strip("<>") for a in senders)):
        local, domain = _mailbox(address)
        if (local, domain) in ours:
            return f"one of the service's own addresses ({local}@{domain})"
        if _ROBOT_LOCAL.match(local):
            return f"a robot sender ({local}@{domain})"
    return None


Rule = Callable[[Fields, str | None, Collection[str]], str | None]
_RULES: tuple[Rule, ...] = (
    _null_sender,
    _auto_submitted,
    _bulk_or_list,
    _report_or_bounce,
    _robot_or_own,
    _auto_subject,
)
