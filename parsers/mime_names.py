"""Safe display names for attachments, decoded from whatever the mail client wrote."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from email.message import Message

MAX_NAME = 200
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)\s+(?==\?)")  # RFC 2047 §6.2: not part of the text
_LOOSE_NAME = re.compile(r'(?:file)?name\s*=\s*(?:"([^"]+)"|([^\s;"]+))', re.IGNORECASE)
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Names clients write that Python's codec registry does not know.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-cyrillic": "mac-cyrillic",
    "unknown-8bit": "latin-1",
    "x-unknown": "latin-1",
}


def part_name(part: Message) -> str:
    """The part's file name (Content-Disposition first, then Content-Type), or ''."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = part.get_param(param, header=header)
        except (ValueError, LookupError, TypeError):
            continue  # a header too broken to read parameters from
        name = clean_name(_param_text(value))
        if name:
            return name
    return _loose_name(part)


def _loose_name(part: Message) -> str:
    # Microsoft CDO writes `application/pdf name="x.pdf"`: no semicolon, so no parameter.
    for header in ("content-disposition", "content-type"):
        match = _LOOSE_NAME.search(str(part.get(header, "")))
        if match:
            return clean_name(_param_text(match.group(1) or match.group(2)))
    return ""


def clean_name(text: str) -> str:
    """A name fit to show: encoded-words decoded, no folders, no control characters."""
    return _capped(re.split(r"[\\/]", _flat(text))[-1].strip(" ."))


def clean_text(text: str) -> str:
    """Header text fit to show (a subject): decoded, on one line, no control characters."""
    return _capped(_flat(text))


def decode_words(text: str) -> str:
    """RFC 2047 encoded-words anywhere in the text, adjacent ones of one charset joined."""
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub("", text)
    pieces: list[tuple[str | None, bytes | str]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        if match.start() > position:
            pieces.append((None, text[position : match.start()]))
        pieces.append((match.group(1).split("*")[0].lower(), _word_bytes(match)))
        position = match.end()
    pieces.append((None, text[position:]))
    return _join_words(pieces)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset, else UTF-8, else Windows-1252, else Latin-1 (never fails)."""
    for encoding in (charset, "utf-8"):
        if not encoding:
            continue
        try:
            return data.decode(_CHARSET_ALIASES.get(encoding.lower(), encoding))
        except (LookupError, ValueError):  # unknown, undecodable, or a garbled charset name
            continue
    text = data.decode("utf-8", errors="replace")
    # UTF-8 cut mid-character (Yahoo truncates long names) is still UTF-8, not Latin-1.
    if text.count("\ufffd") * 4 <= sum(char > "\x7f" for char in text):
        return text
    try:
        return data.decode("cp1252")  # what Windows clients write raw
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _param_text(value: str | tuple[str | None, str | None, str] | None) -> str:
    # Python keeps raw 8-bit header bytes as surrogate escapes: turn them back into bytes.
    if value is None:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded text)
        charset, _, text = value
        return decode_bytes(text.encode("latin-1", "surrogateescape"), charset)
    if not isinstance(value, str):
        return ""
    return decode_bytes(value.encode("utf-8", "surrogateescape"), "utf-8")


def _flat(text: str) -> str:
    text = decode_words(_param_text(text))
    return " ".join("".join(_visible(char) for char in text).split())


def _word_bytes(match: re.Match[str]) -> bytes:
    payload = match.group(3)
    if match.group(2) in "bB":
        payload = re.sub(r"[^A-Za-z0-9+/]", "", payload)
        payload += "=" * (-len(payload) % 4)
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            return b""
    return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)


def _join_words(pieces: list[tuple[str | None, bytes | str]]) -> str:
    # Clients split multi-byte characters across words, so bytes are decoded per run.
    out: list[str] = []
    run: list[bytes] = []
    run_charset: str | None = None
    for charset, value in [*pieces, (None, "")]:
        if isinstance(value, bytes) and charset == run_charset:
            run.append(value)
            continue
        if run:
            out.append(decode_bytes(b"".join(run), run_charset))
        run, run_charset = ([value], charset) if isinstance(value, bytes) else ([], None)
        if isinstance(value, str):
            out.append(value)
    return "".join(out)


def _visible(char: str) -> str:
    if char in "\r\n\t":
        return " "
    if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
        return ""
    return char


def _capped(name: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    stem, dot, suffix = name.rpartition(".")
    if dot and 0 < len(suffix) <= 10:
        return stem[: MAX_NAME - len(suffix) - 1].rstrip() + "." + suffix
    return name[:MAX_NAME]
