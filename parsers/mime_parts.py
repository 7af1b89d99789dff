"""What one MIME part holds: its bytes, decoded, and why it is not a document."""

from __future__ import annotations

import binascii
import codecs
import mimetypes
import re
from email.message import Message

# Reasons a part is not imported, in plain words for the customer.
BODY = "the message body"
EMPTY = "empty attachment"
DUPLICATE = "the same file again"
DAMAGED_ENCODING = "damaged attachment encoding"
UNKNOWN_ENCODING = "an attachment in a transfer encoding we do not know"
IMAGE = "an image (a logo, signature or screenshot)"
OFFICE = "a Word/Excel document: please send the PDF invoice or a CSV export"
SIGNATURE = "a digital signature"
ENCRYPTED = "an encrypted part we cannot open"
CALENDAR = "a calendar invitation"
WEB_PAGE = "a web page (.html), not an invoice PDF or a CSV export"
TEXT = "a text file, not an invoice PDF or a CSV export"
CONTACT = "a contact card"
MEDIA = "an audio or video file"
OTHER_ARCHIVE = "an archive we do not open (we open zip files only)"
NOT_A_PDF = "named like a PDF but it is not one (the file may be damaged)"
NOT_TEXT = "named like a CSV or JSON file but it is not text"
OTHER = "not a PDF invoice nor a CSV or JSON usage export"
OUTLOOK_MESSAGE = "an Outlook message file (.msg): please forward the e-mail itself instead"
REPORT = "a delivery or read report"
PARTIAL = "one piece of a message split in several (message/partial)"
EXTERNAL = "a link to a file stored elsewhere, not the file itself"
BROKEN_STRUCTURE = "a damaged part of the message (its MIME boundaries are missing)"
DAMAGED_ZIP = "a damaged zip archive"

_BODY_TYPES = frozenset(
    {"text/plain", "text/html", "text/enriched", "text/richtext", "text/watch-html"}
)
_TABLE_TYPES = frozenset(
    {"text/csv", "application/csv", "text/comma-separated-values", "application/json", "text/json"}
)
_TABLE_EXTENSIONS = frozenset({"csv", "json"})
_TYPE_REASONS = {
    "message/delivery-status": REPORT,
    "message/global-delivery-status": REPORT,
    "message/disposition-notification": REPORT,
    "message/feedback-report": REPORT,
    "text/rfc822-headers": REPORT,
    "message/rfc822-headers": REPORT,
    "message/partial": PARTIAL,
    "message/external-body": EXTERNAL,
}


def _rule(
    extensions: str, type_prefixes: str, why: str
) -> tuple[frozenset[str], tuple[str, ...], str]:
    return frozenset(extensions.split()), tuple(type_prefixes.split()), why


_OFFICE_TYPES = (
    "application/msword application/vnd.ms- application/vnd.openxmlformats "
    "application/vnd.oasis.opendocument application/rtf text/rtf"
)
# Checked in order: the first rule whose extension or type prefix matches gives the reason.
_RULES = (
    _rule("png jpg jpeg gif bmp tif tiff webp heic svg ico emz wmz", "image/", IMAGE),
    _rule(
        "doc docx docm xls xlsx xlsm ppt pptx odt ods odp rtf pages numbers", _OFFICE_TYPES, OFFICE
    ),
    _rule(
        "p7s asc sig",
        "application/pkcs7-signature application/x-pkcs7-signature application/pgp-signature",
        SIGNATURE,
    ),
    _rule(
        "p7m pgp gpg",
        "application/pkcs7-mime application/x-pkcs7-mime application/pgp-encrypted",
        ENCRYPTED,
    ),
    _rule("ics vcs", "text/calendar application/ics", CALENDAR),
    _rule("vcf", "text/vcard text/x-vcard text/directory", CONTACT),
    _rule("msg", "application/vnd.ms-outlook", OUTLOOK_MESSAGE),
    _rule("html htm mht mhtml", "text/html", WEB_PAGE),
    _rule("pdf", "application/pdf", NOT_A_PDF),
    _rule("csv json", " ".join(_TABLE_TYPES), NOT_TEXT),
    _rule(
        "rar 7z gz tgz tar bz2 xz cab",
        "application/x-rar application/x-7z application/gzip application/x-gzip application/x-tar",
        OTHER_ARCHIVE,
    ),
    _rule("zip", "application/zip application/x-zip", DAMAGED_ZIP),  # a real zip is opened
    _rule("txt text log", "text/plain", TEXT),
    _rule("mp3 mp4 wav m4a mov avi", "audio/ video/", MEDIA),
)
_TYPES = mimetypes.MimeTypes()  # Python's own table only: /etc/mime.types differs by machine
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_BASE64_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=\s]")
_WHITESPACE = b" \t\r\n\x0b\x0c"
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def content_type(part: Message) -> str:
    """The declared media type, or application/octet-stream where it is garbage."""
    match = _MEDIA_TYPE.match(part.get_content_type())
    return match.group(0) if match else "application/octet-stream"


def guess_type(name: str) -> str:
    """A media type from a file name, for files found inside archives."""
    return _TYPES.guess_type(name, strict=False)[0] or "application/octet-stream"


def guess_extension(media_type: str) -> str:
    """An extension (without its dot) for a media type, or 'bin'."""
    guessed = _TYPES.guess_extension(media_type, strict=False)
    return guessed.lstrip(".") if guessed else "bin"


def extension(name: str) -> str:
    """The lower-case extension without its dot, or ''."""
    stem, dot, suffix = name.rpartition(".")
    return suffix.lower() if dot and stem else ""


def is_body(media_type: str, name: str, disposition: str | None) -> bool:
    """Whether a leaf is the text of the message rather than a file."""
    return media_type in _BODY_TYPES and not name and disposition != "attachment"


def type_reason(media_type: str) -> str | None:
    """The reason for parts whose type alone says they are no document."""
    return _TYPE_REASONS.get(media_type)


def is_declared_table(name: str, media_type: str) -> bool:
    """Whether the label says CSV or JSON (the content must still be text)."""
    return media_type in _TABLE_TYPES or extension(name) in _TABLE_EXTENSIONS


def encoding_reason(name: str, media_type: str, trouble: str) -> str:
    """The reason for a part whose transfer encoding failed: its kind, where that says more."""
    kind = reason(name, media_type)
    return trouble if kind in (NOT_A_PDF, NOT_TEXT, DAMAGED_ZIP, OTHER) else kind


def reason(name: str, media_type: str, data: bytes = b"") -> str:
    """Why a file that is neither a PDF nor a CSV/JSON export is not imported."""
    if data.startswith(_IMAGE_MAGIC):  # a logo called winmail.dat is still a logo
        return IMAGE
    ext = extension(name)
    for extensions, type_prefixes, why in _RULES:
        if ext in extensions or media_type.startswith(type_prefixes):
            return why
    return OTHER


def is_text(data: bytes) -> bool:
    """Whether the bytes read as text the way the CSV and JSON parsers will read them."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decodes(data, encoding)
    if b"\x00" in data[:4096]:
        return False
    return _decodes(data, "utf-8") or _decodes(data, "cp1252")


def payload_bytes(part: Message) -> tuple[bytes, str | None]:
    """The part's bytes out of their transfer encoding, and a reason if that went wrong."""
    # get_payload() runs raw 8-bit bytes through the declared charset, losing them (and
    # raising on a charset name holding 8-bit bytes): read what the parser stored instead.
    payload = getattr(part, "_payload", None)
    if not isinstance(payload, str):
        return b"", None
    return decode_transfer(_wire_bytes(payload), transfer_encoding(part))


def decode_transfer(raw: bytes, encoding: str) -> tuple[bytes, str | None]:
    """Bytes as they were before a transfer encoding, and a reason if that went wrong."""
    if encoding == "base64":
        return _base64(raw)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(raw), None
    if encoding in ("x-uuencode", "uuencode", "uue", "x-uue"):
        return _uudecode(raw)
    if encoding in ("", "7bit", "8bit", "binary"):
        return raw, None
    return raw, UNKNOWN_ENCODING


def transfer_encoding(part: Message) -> str:
    """The Content-Transfer-Encoding token; Outlook writes `base64;` and worse."""
    value = str(part.get("content-transfer-encoding", ""))
    return re.split(r"[;\s]", value.strip().strip("\"'").lower(), maxsplit=1)[0]


def _wire_bytes(payload: str) -> bytes:
    # The parser keeps raw 8-bit bytes as surrogate escapes; this gives them back.
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def _base64(raw: bytes) -> tuple[bytes, str | None]:
    damaged = _NOT_BASE64.search(raw) is not None
    try:  # one pass, no copies: the common case of a 30 MB invoice
        return binascii.a2b_base64(raw), DAMAGED_ENCODING if damaged else None
    except binascii.Error:
        pass  # padding missing or one character too many: repair below
    letters = _BASE64_ALPHABET.sub(b"", raw.translate(None, _WHITESPACE).rstrip(b"="))
    if len(letters) % 4 == 1:
        letters, damaged = letters[:-1], True
    return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4)), (
        DAMAGED_ENCODING if damaged else None
    )


def _uudecode(raw: bytes) -> tuple[bytes, str | None]:
    lines = raw.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(b"begin ")]
    if not starts:
        return b"", DAMAGED_ENCODING
    out: list[bytes] = []
    for line in lines[starts[0] + 1 :]:
        if line.strip() in (b"end", b"`"):
            break
        if not line.strip():
            continue  # a2b_uu reads an empty line as 32 zero bytes
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # Some encoders pad lines: the first character says how many bytes count.
            try:
                out.append(binascii.a2b_uu(line[: (((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                return b"".join(out), DAMAGED_ENCODING
    return b"".join(out), None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True
