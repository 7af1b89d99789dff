"""Cheap, bounded look at a message's header block, before anything parses the whole message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import getaddresses

MAX_HEADER_FIELDS = 1_000
_FIELD_NAME = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 ftext, then a colon
_MSGID = re.compile(r"<[^<>\s]+>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class HeaderSummary:
    message_id: str  # "<...>" as written, "" when absent
    subject: str  # decoded, one line
    from_address: str  # lower-case address of From, "" when absent
    problem: str | None  # why the message cannot be an import, for ops and the reply


def inspect_header_block(raw: bytes, max_bytes: int) -> HeaderSummary:
    """Read at most `max_bytes` of headers; never touches the body."""
    block, complete = _header_block(raw, max_bytes)
    if not complete:
        return HeaderSummary("", "", "", f"the header block is larger than {max_bytes} bytes")
    fields = _unfold(block)
    if len(fields) > MAX_HEADER_FIELDS:
        return HeaderSummary("", "", "", f"more than {MAX_HEADER_FIELDS} header fields")
    if not fields:
        return HeaderSummary("", "", "", "no header fields: this is not an email message")
    first = {name: value for name, value in reversed(fields)}  # the first occurrence wins
    return HeaderSummary(
        message_id=_message_id(first.get("message-id", "")),
        subject=_one_line(first.get("subject", "")),
        from_address=_address(first.get("from", "")),
        problem=None,
    )


def _header_block(raw: bytes, max_bytes: int) -> tuple[bytes, bool]:
    window = raw[: max_bytes + 4]
    ends = [i for i in (window.find(b"\r\n\r\n"), window.find(b"\n\n")) if i >= 0]
    if ends:
        end = min(ends)
        return window[:end], end <= max_bytes
    # no blank line: a message that is all headers, if it is small enough
    return window, len(raw) <= max_bytes


def _unfold(block: bytes) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for index, line in enumerate(block.replace(b"\r\n", b"\n").split(b"\n")):
        if index == 0 and line.startswith(b"From "):
            continue  # an mbox separator left in an exported .eml
        if line[:1] in (b" ", b"\t") and fields:
            last_name, last_value = fields[-1]
            fields[-1] = (last_name, last_value + " " + _text(line.strip()))
        elif _FIELD_NAME.match(line):
            raw_name, _, raw_value = line.partition(b":")
            fields.append((_text(raw_name).lower(), _text(raw_value.strip())))
    return fields


def _text(value: bytes) -> str:
    # Headers should be ASCII; raw UTF-8 (RFC 6532) is common, anything else is replaced.
    return value.decode("utf-8", errors="replace")


def _message_id(value: str) -> str:
    match = _MSGID.search(value)
    return match.group(0)[:900] if match else ""


def _one_line(value: str) -> str:
    try:
        decoded = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        decoded = value
    return _CONTROL.sub(" ", decoded).strip()[:998]


def _address(value: str) -> str:
    addresses = getaddresses([value])
    return addresses[0][1].lower()[:320] if addresses else ""
