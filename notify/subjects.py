"""Inbound header text made safe to show or to reuse in a reply: decoded, one line, inert."""

from __future__ import annotations

import re
from email.header import decode_header, make_header

# Control characters, Unicode line/paragraph separators (str.splitlines breaks on them) and
# bidi overrides (they let a subject display as something else than it is).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")
# The email library decodes anything that looks like an encoded word when a header is set,
# even inside a word: text decoded once must never carry one into a reply header.
_ENCODED_WORD_START = re.compile(r"=\?")
# Reply prefixes of common clients: Re, Ré, AW (de), SV (da/no/sv), VS (fi), Antw (nl),
# Odp (pl), RIF (it), Ynt (tr); with an optional count (Re[2]:) and a full-width colon.
_REPLY_PREFIXES = re.compile(
    r"^(?:\s*(?:re|r\u00e9|aw|sv|vs|antw|odp|rif|ynt)\s*(?:[\[(]\d{1,3}[\])])?\s*[:\uff1a])+\s*",
    re.IGNORECASE,
)
MAX_SUBJECT_CHARS = 900  # well inside RFC 5322's 998 even once folded and encoded


def decoded(value: object) -> str:
    """RFC 2047 encoded words decoded, as a mail client would display the header."""
    text = str(value)
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError):
        return text  # an unknown charset or broken word: the text as written


def one_line(value: object, limit: int = MAX_SUBJECT_CHARS) -> str:
    """Decoded, control characters and line breaks gone, whitespace squeezed, bounded."""
    text = _UNSAFE.sub(" ", decoded(value))
    text = _ENCODED_WORD_START.sub("= ?", text)
    return _SPACES.sub(" ", text).strip()[:limit].rstrip()


def reply_subject(original: object) -> str:
    """`Re: ` + the original subject, never `Re: Re:`: leading reply prefixes of any client
    and language collapse into one `Re: `."""
    subject = one_line(original)
    rest = _REPLY_PREFIXES.sub("", subject)
    return f"Re: {rest}" if rest else "Re:"


def single_reply_prefix(subject: str) -> str:
    """A subject that starts with reply prefixes keeps exactly one `Re: `; others as they are."""
    return reply_subject(subject) if _REPLY_PREFIXES.match(subject) else subject
