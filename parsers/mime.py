"""Candidate documents out of a raw message, however it was wrapped, and why the rest was not."""

from __future__ import annotations

import email
import hashlib
from dataclasses import dataclass, field
from email.message import Message
from email.policy import Compat32

import structlog

from parsers import archives, mime_parts, tnef
from parsers.archives import ZipLimits
from parsers.mime_names import clean_name, clean_text, part_name

log = structlog.get_logger()

# Message-level problems: the rest of the message was not read.
TOO_MANY_PARTS = "the message has more than {n} parts: the rest was not read"
TOO_DEEP = "the message is nested more than {n} levels deep: the parts below were not read"
OUTLOOK_FILE = "this is an Outlook .msg file, not an e-mail: please forward the message itself"
INTERNAL = "part of the message could not be read"
# Reasons for containers (the part reasons live in mime_parts).
FORWARDED_EMPTY = "a forwarded message with no PDF or CSV in it"
TNEF_DAMAGED = "a damaged Outlook winmail.dat"
TNEF_TOO_LARGE = "an Outlook winmail.dat too large when unpacked"
TNEF_EMPTY = "Outlook's copy of the message text (winmail.dat), with no attachment in it"
ZIP_EMPTY = "an empty zip archive"
ZIP_TOO_DEEP = "a zip inside a zip inside a zip (we open two levels)"

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .msg, .doc, .xls
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class MimeLimits:
    """How far into a message we read (RELIABILITY.md)."""

    max_depth: int = 20
    max_parts: int = 1000  # MIME entities, winmail.dat files and zip members together
    zip: ZipLimits = field(default_factory=ZipLimits)


@dataclass(frozen=True)
class Attachment:
    """A candidate document: a PDF, or a CSV/JSON export, to hand to the parsers."""

    name: str  # safe to show, never empty
    data: bytes
    path: str  # where it was found: "2/1 (forwarded message) > winmail.dat > invoice.pdf"


@dataclass(frozen=True)
class Skipped:
    """A part that is not a candidate, and why, in words for the customer."""

    name: str
    content_type: str
    reason: str
    path: str = ""


@dataclass(frozen=True)
class Extracted:
    """Everything found in one message."""

    attachments: list[Attachment]
    skipped: list[Skipped]
    problems: list[str]


@dataclass(frozen=True)
class _File:
    """Bytes found somewhere in the message, not yet judged."""

    name: str  # cleaned, never empty
    content_type: str
    data: bytes
    where: str  # the path of what holds it

    @property
    def path(self) -> str:
        return f"{self.where} > {self.name}" if self.where else self.name


class _RawHeaders(Compat32):
    """compat32, but header values keep raw 8-bit bytes instead of turning them into U+FFFD."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders()


class _Stop(Exception):
    """The part limit was reached: keep what was found."""


def extract_documents(raw: bytes, limits: MimeLimits | None = None) -> Extracted:
    """The candidate documents of a raw message, every other part with its reason."""
    walk = _Walk(limits or MimeLimits())
    try:
        walk.raw(raw)
    except _Stop:
        pass
    except RecursionError:  # the stdlib parser recurses once per nested multipart
        walk.problem(TOO_DEEP.format(n=walk.limits.max_depth))
    except Exception:  # a bad message must get an answer, never crash the import
        log.exception("mime.walk_failed", parts_read=walk.parts)
        walk.problem(INTERNAL)
    return Extracted(walk.attachments, walk.skipped, walk.problems)


class _Walk:
    """One message's walk: the limits, what was found, what was counted."""

    def __init__(self, limits: MimeLimits) -> None:
        self.limits = limits
        self.attachments: list[Attachment] = []
        self.skipped: list[Skipped] = []
        self.problems: list[str] = []
        self.parts = 0
        self.digests: set[bytes] = set()
        self.budget = archives.Budget(limits.zip.max_total_bytes)
        self.body_listed = False

    def raw(self, raw: bytes) -> None:
        if raw.startswith(_OLE):
            self.problem(OUTLOOK_FILE)
        elif raw.startswith(tnef.SIGNATURE):  # a bare winmail.dat handed in as a file
            self.count()
            self.file(self.found("winmail.dat", "application/ms-tnef", raw, ""), 0, 0)
        else:
            message = email.message_from_bytes(raw, policy=_POLICY)
            self.entity(message, "", 0, top=True)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def count(self) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            self.problem(TOO_MANY_PARTS.format(n=self.limits.max_parts))
            raise _Stop

    def too_deep(self, depth: int) -> bool:
        if depth <= self.limits.max_depth:
            return False
        self.problem(TOO_DEEP.format(n=self.limits.max_depth))
        return True

    # MIME structure

    def entity(self, part: Message, section: str, depth: int, top: bool) -> None:
        self.count()
        if self.too_deep(depth):
            return
        media_type = mime_parts.content_type(part)
        why = mime_parts.type_reason(media_type)
        if why is not None:
            self.skip(part_name(part) or media_type, media_type, why, section or "1")
        elif part.is_multipart() and media_type.startswith("message/"):
            self.enclosed(part, section or "1", depth)
        elif part.is_multipart():
            self.children(part, section, depth, top)
        elif media_type.startswith("multipart/"):
            self.broken(part, section or "1", media_type)
        else:
            self.leaf(part, section or "1", depth, top)

    def children(self, part: Message, section: str, depth: int, top: bool) -> None:
        for number, child in enumerate(_messages(part.get_payload()), 1):
            self.entity(child, f"{section}/{number}" if section else str(number), depth + 1, top)

    def enclosed(self, part: Message, section: str, depth: int) -> None:
        inner = _unwrapped(part, _messages(part.get_payload()))
        name = part_name(part) or (clean_text(str(inner[0].get("subject", ""))) if inner else "")
        self.forwarded(inner, f"{section} (forwarded message)", name, depth)

    def forwarded(self, inner: list[Message], label: str, name: str, depth: int) -> None:
        """A message inside the message: walk it; say so if it held nothing."""
        found = len(self.attachments) + len(self.skipped)
        for message in inner:
            self.entity(message, label, depth + 1, top=False)
        if len(self.attachments) + len(self.skipped) == found:
            self.skip(name or "forwarded message", "message/rfc822", FORWARDED_EMPTY, label)

    def broken(self, part: Message, section: str, media_type: str) -> None:
        """A multipart whose boundaries never appear: Python leaves its text unparsed."""
        data, _ = mime_parts.payload_bytes(part)
        if data.strip():  # an empty one held nothing to report
            self.skip("message part", media_type, mime_parts.BROKEN_STRUCTURE, section)

    def leaf(self, part: Message, section: str, depth: int, top: bool) -> None:
        media_type = mime_parts.content_type(part)
        name = part_name(part)
        if mime_parts.is_body(media_type, name, part.get_content_disposition()):
            if top and not self.body_listed:  # the body is listed once, not per alternative
                self.body_listed = True
                self.skip("message body", media_type, mime_parts.BODY, section)
            return
        data, trouble = mime_parts.payload_bytes(part)
        found = self.found(name, media_type, data, section)
        if trouble and b"%PDF-" not in data[:1024]:
            self.skip_file(found, mime_parts.encoding_reason(name, media_type, trouble))
        else:
            self.file(found, depth, 0)

    # Files, wherever they came from

    def found(self, name: str, media_type: str, data: bytes, where: str) -> _File:
        """A file, named after its content and its place when the sender gave no name."""
        if not name:
            name = f"attachment-{self.parts}.{_default_extension(data, media_type)}"
        return _File(name, media_type, data, where)

    def file(self, found: _File, depth: int, zip_depth: int) -> None:
        """Judge bytes by their content: a candidate, a container to open, or a reason."""
        data = found.data
        if not data:
            self.skip_file(found, mime_parts.EMPTY)
        elif data.startswith(tnef.SIGNATURE):  # containers first: they may hold a PDF's header
            self.winmail(found, depth, zip_depth)
        elif data.startswith(_ZIP):
            self.archive(found, depth, zip_depth)
        elif data.startswith(_OLE):
            msg = mime_parts.extension(found.name) == "msg"
            self.skip_file(found, mime_parts.OUTLOOK_MESSAGE if msg else mime_parts.OFFICE)
        elif b"%PDF-" in data[:1024]:
            self.candidate(found)
        elif mime_parts.is_declared_table(found.name, found.content_type):
            self.table(found)
        elif found.content_type == "message/rfc822" or mime_parts.extension(found.name) == "eml":
            self.eml(found, depth)
        else:
            self.skip_file(found, mime_parts.reason(found.name, found.content_type, data))

    def table(self, found: _File) -> None:
        if mime_parts.is_text(found.data):
            self.candidate(found)
        else:
            self.skip_file(found, mime_parts.NOT_TEXT)

    def candidate(self, found: _File) -> None:
        digest = hashlib.sha256(found.data).digest()
        if digest in self.digests:
            self.skip_file(found, mime_parts.DUPLICATE)
            return
        self.digests.add(digest)
        self.attachments.append(Attachment(found.name, found.data, found.path))

    def winmail(self, found: _File, depth: int, zip_depth: int) -> None:
        """Outlook's winmail.dat: the real attachments are inside."""
        try:
            files = tnef.read_tnef(found.data, max(self.budget.remaining, 0))
        except tnef.TnefError as exc:
            self.skip_file(found, TNEF_TOO_LARGE if exc.too_large else TNEF_DAMAGED)
            return
        self.budget.take(sum(len(inner.data) for inner in files))
        if not files:
            self.skip_file(found, TNEF_EMPTY if _is_winmail(found) else FORWARDED_EMPTY)
        for inner in files:
            self.count()
            if not self.too_deep(depth + 1):
                name = clean_name(inner.name)
                media_type = inner.content_type or mime_parts.guess_type(name)
                self.file(
                    self.found(name, media_type, inner.data, found.path), depth + 1, zip_depth
                )

    def archive(self, found: _File, depth: int, zip_depth: int) -> None:
        """A zip: its members are judged like attachments, within the zip limits."""
        if mime_parts.reason(found.name, found.content_type) == mime_parts.OFFICE:
            self.skip_file(found, mime_parts.OFFICE)  # docx, xlsx, odt are zips too
            return
        if zip_depth >= self.limits.zip.max_depth:
            self.skip_file(found, ZIP_TOO_DEEP)
            return
        try:
            with archives.open_zip(found.data, self.limits.zip) as archive:
                if archives.is_office(archive):
                    self.skip_file(found, mime_parts.OFFICE)
                    return
                members = archives.read_members(archive, self.limits.zip, self.budget)
        except archives.ArchiveRefused as exc:
            self.skip_file(found, str(exc))
            return
        if not members:
            self.skip_file(found, ZIP_EMPTY)
        for member in members:
            self.member(found, member, depth, zip_depth)

    def member(self, archive: _File, member: archives.Member, depth: int, zip_depth: int) -> None:
        self.count()
        name = clean_name(member.name)
        found = self.found(name, mime_parts.guess_type(name), member.data, archive.path)
        if member.refused is not None:
            self.skip_file(found, member.refused)
        elif not self.too_deep(depth + 1):
            self.file(found, depth + 1, zip_depth + 1)

    def eml(self, found: _File, depth: int) -> None:
        """A message saved as a file (.eml): walk it like a forwarded one."""
        message = email.message_from_bytes(found.data, policy=_POLICY)
        self.forwarded([message], found.path, found.name, depth)

    # Listing

    def skip_file(self, found: _File, reason: str) -> None:
        self.skip(found.name, found.content_type, reason, found.path)

    def skip(self, name: str, media_type: str, reason: str, path: str) -> None:
        self.skipped.append(Skipped(name, media_type, reason, path))


def _messages(payload: object) -> list[Message]:
    return (
        [item for item in payload if isinstance(item, Message)] if isinstance(payload, list) else []
    )


def _unwrapped(part: Message, inner: list[Message]) -> list[Message]:
    # RFC 2046 forbids encoding a message/rfc822 part, SwiftMailer does it anyway; Python then
    # parses the base64 text as a message without headers.
    encoding = mime_parts.transfer_encoding(part)
    if encoding not in ("base64", "quoted-printable") or len(inner) != 1:
        return inner
    if inner[0].keys() and encoding == "base64":
        return inner
    data, _ = mime_parts.decode_transfer(inner[0].as_bytes().lstrip(b"\r\n"), encoding)
    return [email.message_from_bytes(data, policy=_POLICY)]


def _is_winmail(found: _File) -> bool:
    # Not an Outlook message attached inside one (those come out of TNEF unlabelled).
    return found.content_type == "application/ms-tnef" or found.name.lower() == "winmail.dat"


def _default_extension(data: bytes, media_type: str) -> str:
    if data.startswith(_ZIP):
        return "zip"
    if data.startswith(tnef.SIGNATURE):
        return "dat"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return mime_parts.guess_extension(media_type)
