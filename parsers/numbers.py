"""Amounts, percentages, currencies and dates as printed on invoices and exports, read exactly.

Rules (the parsers rely on them; change them only with their tests):

Amounts
- Spaces (including U+00A0, U+202F, U+2009) and apostrophes only ever separate thousands.
- Where both `.` and `,` occur, the last one is the decimal mark.
- A mark that occurs more than once separates thousands (`1,234,567`).
- A single mark followed by exactly three digits after a one-to-three-digit integer part other
  than 0 (`1,234`, `1.234`) can be either: it is read by the document's convention
  (`decimal_comma`), and without one it raises `AmbiguousNumber`. Any other single mark is the
  decimal mark (`0,0000017000`, `12.50`, `1234.567`).
- Thousands groups must be well formed (1-3 digits, then groups of exactly 3); a number that
  contradicts the stated convention raises instead of being read another way.
- `(12.00)` and a leading or trailing minus (`-`, U+2212) are negative. One currency symbol or
  code may stand before or after the number. A percent sign is refused by `parse_amount` (an
  amount column holding `20%` is a misread waiting to happen); `parse_percent` reads it.

Dates
- ISO `2026-10-01` (a time after it, as in `2026-10-31T23:59:59Z`, is ignored: the date is the one
  written), `2026/10/01`; numeric `01/10/2026`, `1.10.2026`, `01-10-26` read day first or month
  first as the caller says; never swapped silently when the order given is impossible.
- Named months in English and French, abbreviated or not, with or without accents, dots,
  ordinals (`1er`, `1st`) and a leading weekday: `Oct 1, 2026`, `1 October 2026`,
  `12 févr. 2026`, `1er octobre 2026`, `jeudi 1 octobre 2026`.
- Two-digit years are 20yy (these documents start in 2023).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

__all__ = [
    "AmbiguousDate",
    "AmbiguousNumber",
    "guess_day_first",
    "guess_decimal_comma",
    "parse_amount",
    "parse_currency",
    "parse_date",
    "parse_percent",
]


class AmbiguousNumber(ValueError):
    """The number reads differently with a decimal comma and with a decimal point."""


class AmbiguousDate(ValueError):
    """The numeric date reads differently day first and month first."""


# ---------------------------------------------------------------------------------------------
# Currencies

# Matched longest first, so that "US$" is not read as "$".
_SYMBOLS = {
    "US$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "S$": "SGD",
    "HK$": "HKD",
    "NZ$": "NZD",
    "€": "EUR",
    "$": "USD",  # Mistral bills in EUR or USD: a bare dollar sign is the US dollar
    "£": "GBP",
    "₹": "INR",
}  # not ¥ (yen or yuan) nor kr (three crowns): those need their ISO code
# ISO codes the ECB publishes, plus EUR; any other three letters are not a currency here.
_ECB_CODES = """EUR USD JPY BGN CZK DKK GBP HUF PLN RON SEK CHF ISK NOK TRY AUD BRL CAD CNY HKD
IDR ILS INR KRW MXN MYR NZD PHP SGD THB ZAR"""
_CODES = frozenset(_ECB_CODES.split())
_CODE_RE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
# Sorted once here, not per call (a parse reads every amount cell through these): sorted() is
# stable, so the order, and which of two matches wins, is what sorting on each call gave.
_SYMBOLS_LONGEST_FIRST = sorted(_SYMBOLS.items(), key=lambda item: -len(item[0]))
# _strip_currency's symbols and codes, longest first, each with its rank in that order.
_TOKEN_RANK = {
    token: rank for rank, token in enumerate(sorted([*_SYMBOLS, *_CODES], key=len, reverse=True))
}
_TOKEN_LENGTHS = sorted({len(token) for token in _TOKEN_RANK}, reverse=True)
_TOKEN_CHARS = frozenset("".join(_TOKEN_RANK))  # a text with none of these names no currency


def parse_currency(text: str) -> str | None:
    """The ISO code of the currency named in `text` (`€`, `EUR`, `US$`, `Coût (€)`), or None.

    Raises ValueError when two different currencies are named."""
    found: set[str] = set()
    rest = unicodedata.normalize("NFC", text)
    for symbol, code in _SYMBOLS_LONGEST_FIRST:
        if symbol in rest:
            found.add(code)
            rest = rest.replace(symbol, " ")
    # Upper case only: "ils", "try" and "php" are words before they are currencies.
    found.update(m for m in _CODE_RE.findall(rest) if m in _CODES)
    if len(found) > 1:
        raise ValueError(f"{text!r} names several currencies: {', '.join(sorted(found))}")
    return found.pop() if found else None


# ---------------------------------------------------------------------------------------------
# Amounts

_GROUP_SPACES = "\u0020\u00a0\u202f\u2009\u2007'\u2019"
_MINUSES = "-\u2212\u2012\u2013"
_NUMBER_RE = re.compile(rf"[0-9.,{_GROUP_SPACES}]*[0-9.,]([eE][+-]?[0-9]+)?")
_DIGIT_RE = re.compile(r"[0-9]")
_EXPONENT_RE = re.compile(r"[eE][+-]?[0-9]+$")
_OTHER_MARK = {".": ",", ",": "."}


def parse_amount(text: str, decimal_comma: bool | None = None) -> Decimal:
    """The exact value of a printed amount: `1 234,56 €`, `-€12.00`, `(12.00)`, `$0.0000017`.

    `decimal_comma` is the document's convention (True: `1.234,56`, False: `1,234.56`, None:
    unknown, so a number that could be read both ways raises AmbiguousNumber)."""
    body, negative = _strip_decorations(text)
    value = _parse_number(body, decimal_comma, text)
    # copy_negate is exact; unary minus would round to the context's 28 digits.
    return value.copy_negate() if negative and value else value


def parse_percent(text: str, decimal_comma: bool | None = None) -> Decimal:
    """The number of percent in `20 %`, `12.5%`, `5,5 %` (Decimal("20"), not 0.2)."""
    stripped = text.strip()
    if not stripped.endswith("%"):
        raise ValueError(f"{text!r} is not a percentage: no % sign")
    return parse_amount(stripped[:-1], decimal_comma)


def guess_decimal_comma(samples: Iterable[str]) -> bool | None:
    """The decimal mark several numbers of one document agree on: True for a comma, False for
    a point, None where none of them tells or they disagree (then each number must be
    unambiguous on its own, which `parse_amount(..., None)` enforces)."""
    votes: set[bool] = set()
    for sample in samples:
        try:
            body, _ = _strip_decorations(sample.strip().removesuffix("%"))
            _parse_number(body, None, sample)
        except ValueError:
            continue  # ambiguous or not a number: says nothing about the convention
        vote = _evidence(_split_exponent(body)[0])
        if vote is not None:
            votes.add(vote)
    return votes.pop() if len(votes) == 1 else None


def _strip_decorations(text: str) -> tuple[str, bool]:
    """The number's digits and marks without sign or currency, and whether it is negative."""
    s = unicodedata.normalize("NFC", text).strip()
    if "%" in s:
        raise ValueError(f"{text!r} is a percentage, not an amount")
    negative = s.startswith("(") and s.endswith(")")
    if negative:
        s = s[1:-1].strip()
    s, sign = _take_sign(s)
    s = _strip_currency(s)
    s, sign_after_currency = _take_sign(s)  # `€-12.00` as well as `-€12.00`
    if sign and sign_after_currency:
        raise ValueError(f"{text!r} has two signs")
    # After the fullmatch, 0-9 are the only characters of `s` that can be digits.
    if not _NUMBER_RE.fullmatch(s) or not _DIGIT_RE.search(s):
        raise ValueError(f"{text!r} is not a number")
    return s, negative != (sign or sign_after_currency)


def _take_sign(s: str) -> tuple[str, bool]:
    if s and s[0] in _MINUSES:
        return s[1:].strip(), True
    if s and s[-1] in _MINUSES:
        return s[:-1].strip(), True
    return s.removeprefix("+").strip(), False


def _strip_currency(s: str) -> str:
    """`s` without the one symbol or code (the longest, then the first in _TOKEN_RANK) that it
    starts with or ends with, where no letter follows or precedes it: `€12`, `12 EUR`, `US$5`.

    Looked up by the few possible lengths rather than tried symbol by symbol, which cost ~80
    startswith/endswith per amount; the result is the same: the lowest rank wins, and for
    one symbol the start before the end."""
    if _TOKEN_CHARS.isdisjoint(s):
        return s  # the usual amount cell: digits and marks, nothing to strip
    found: list[tuple[int, int, int]] = []  # (rank, 0 at the start or 1 at the end, length)
    for length in _TOKEN_LENGTHS:
        if len(s) < length:
            continue
        rank = _TOKEN_RANK.get(s[:length])
        if rank is not None and not s[length : length + 1].isalpha():
            found.append((rank, 0, length))
        rank = _TOKEN_RANK.get(s[-length:])
        if rank is not None and not s[-length - 1 : -length].isalpha():
            found.append((rank, 1, length))
    if not found:
        return s
    _, at_end, length = min(found)
    return (s[:-length] if at_end else s[length:]).strip()


def _split_exponent(s: str) -> tuple[str, str]:
    if "e" not in s and "E" not in s:
        return s, ""
    match = _EXPONENT_RE.search(s)
    return (s[: match.start()], s[match.start() :]) if match else (s, "")


def _parse_number(body: str, decimal_comma: bool | None, original: str) -> Decimal:
    mantissa, exponent = _split_exponent(body)
    mark = _decimal_mark(mantissa, decimal_comma, original)
    integer, fraction = mantissa.rsplit(mark, 1) if mark else (mantissa, "")
    if fraction and not fraction.isdigit():
        raise ValueError(f"{original!r} is not a number: bad digits after the decimal mark")
    digits = _ungroup(integer, original) or "0"
    return Decimal(f"{digits}.{fraction}{exponent}" if fraction else f"{digits}{exponent}")


def _decimal_mark(s: str, decimal_comma: bool | None, original: str) -> str | None:
    """Which of `.` or `,` is the decimal mark of `s` (None: no decimal part), by the rules of
    the module docstring."""
    marks = [c for c in s if c in ".,"]
    if not marks:
        return None
    stated = None if decimal_comma is None else ("," if decimal_comma else ".")
    if _ambiguous(s, marks):
        if stated is None:
            raise AmbiguousNumber(
                f"{original!r} is ambiguous: {marks[0]!r} may be a decimal mark or a thousands "
                "separator; the document's convention is needed"
            )
        return stated if marks[0] == stated else None
    repeated = len(marks) > 1 and len(set(marks)) == 1
    if len(set(marks)) == 2 and marks.count(marks[-1]) > 1:
        raise ValueError(f"{original!r} is not a number: several decimal marks")
    implied = _OTHER_MARK[marks[0]] if repeated else marks[-1]
    if stated is not None and implied != stated:
        raise ValueError(f"{original!r} does not use the document's decimal mark {stated!r}")
    return None if repeated else implied


def _ambiguous(s: str, marks: list[str]) -> bool:
    """One mark after one to three digits and before three: `1,234` or `1.234`."""
    if len(marks) != 1:
        return False
    integer, _, fraction = s.partition(marks[0])
    return len(fraction) == 3 and _is_grouping_lead(integer)


def _evidence(s: str) -> bool | None:
    """True where `s` can only have a decimal comma, False a decimal point, None if either."""
    marks = [c for c in s if c in ".,"]
    if not marks or _ambiguous(s, marks):
        return None
    if len(marks) > 1 and len(set(marks)) == 1:
        return marks[0] == "."  # repeated: it separates thousands, the other mark is decimal
    return marks[-1] == ","


def _is_grouping_lead(integer: str) -> bool:
    return integer.isdigit() and 1 <= len(integer) <= 3 and integer != "0"


def _ungroup(integer: str, original: str) -> str:
    """The digits of an integer part, checking that any thousands separators group by three."""
    separators = {c for c in integer if not c.isdigit()}
    if not separators:
        return integer
    if len(separators) > 1 and not separators <= set(_GROUP_SPACES):
        raise ValueError(f"{original!r} mixes thousands separators")
    head, *tail = re.split(f"[{re.escape(''.join(separators))}]", integer)
    if not (_is_grouping_lead(head) and all(len(g) == 3 and g.isdigit() for g in tail)):
        raise ValueError(f"{original!r} is not a number: thousands are not grouped by three")
    return head + "".join(tail)


# ---------------------------------------------------------------------------------------------
# Dates

_MONTHS = {
    # English
    **dict.fromkeys(["jan", "january"], 1),
    **dict.fromkeys(["feb", "february"], 2),
    **dict.fromkeys(["mar", "march"], 3),
    **dict.fromkeys(["apr", "april"], 4),
    **dict.fromkeys(["may"], 5),
    **dict.fromkeys(["jun", "june"], 6),
    **dict.fromkeys(["jul", "july"], 7),
    **dict.fromkeys(["aug", "august"], 8),
    **dict.fromkeys(["sep", "sept", "september"], 9),
    **dict.fromkeys(["oct", "october"], 10),
    **dict.fromkeys(["nov", "november"], 11),
    **dict.fromkeys(["dec", "december"], 12),
    # French, accents removed (matching is done on unaccented text)
    **dict.fromkeys(["janv", "janvier"], 1),
    **dict.fromkeys(["fev", "fevr", "fevrier"], 2),
    **dict.fromkeys(["mars"], 3),
    **dict.fromkeys(["avr", "avril"], 4),
    **dict.fromkeys(["mai"], 5),
    **dict.fromkeys(["juin"], 6),
    **dict.fromkeys(["juil", "juillet"], 7),
    **dict.fromkeys(["aout"], 8),
    **dict.fromkeys(["septembre"], 9),
    **dict.fromkeys(["octobre"], 10),
    **dict.fromkeys(["novembre"], 11),
    **dict.fromkeys(["decembre"], 12),
}
_WEEKDAY_NAMES = [
    "monday tuesday wednesday thursday friday saturday sunday",
    "mon tue wed thu fri sat sun",
    "lundi mardi mercredi jeudi vendredi samedi dimanche",
]
_WEEKDAYS = {name: i for names in _WEEKDAY_NAMES for i, name in enumerate(names.split())}
_YEAR = r"(?P<year>\d{4}|\d{2})"
_DAY = r"(?P<day>\d{1,2})(?:er|st|nd|rd|th|e)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_SEP = r"[\s\-/]+"
_NAMED_FORMS = [
    re.compile(rf"{_DAY}{_SEP}{_MONTH},?{_SEP}{_YEAR}"),
    re.compile(rf"{_MONTH}\s*{_DAY},?\s+{_YEAR}"),
]
_ISO = re.compile(r"(?P<year>\d{4})[-/](?P<month>\d{1,2})[-/](?P<day>\d{1,2})(?:[t ].*)?")
_NUMERIC = re.compile(r"(?P<a>\d{1,2})(?P<sep>[/.\-])(?P<b>\d{1,2})(?P=sep)" + _YEAR)
_WEEKDAY_PREFIX = re.compile(r"(?P<weekday>[a-z]+)\.?,?\s+(?=\d|[a-z]+\.?\s*\d)")


def parse_date(text: str, day_first: bool | None = True) -> date:
    """The date printed in `text`. `day_first` orders numeric dates (`01/10/2026`): True for
    DD/MM, False for MM/DD, None to accept only dates that read the same both ways or only
    one way (else AmbiguousDate)."""
    s = _fold(text)
    if match := _ISO.fullmatch(s):
        return _make_date(text, match["year"], match["month"], match["day"])
    if match := _NUMERIC.fullmatch(s):
        return _numeric_date(text, match["a"], match["b"], match["year"], day_first)
    s, weekday = _take_weekday(s)
    for form in _NAMED_FORMS:
        if (match := form.fullmatch(s)) and match["month"] in _MONTHS:
            day = _make_date(text, match["year"], str(_MONTHS[match["month"]]), match["day"])
            if weekday is not None and day.weekday() != weekday:
                raise ValueError(f"{text!r}: the weekday does not match the date {day}")
            return day
    raise ValueError(f"{text!r} is not a date in a known format")


def guess_day_first(samples: Iterable[str]) -> bool | None:
    """Whether several numeric dates of one document are day first (True), month first
    (False), or None where none of them tells or they disagree."""
    votes: set[bool] = set()
    for sample in samples:
        match = _NUMERIC.fullmatch(_fold(sample))
        if match is None:
            continue
        a, b = int(match["a"]), int(match["b"])
        if a > 12 >= b:
            votes.add(True)
        elif b > 12 >= a:
            votes.add(False)
    return votes.pop() if len(votes) == 1 else None


def _fold(text: str) -> str:
    """Lower case, no accents, single spaces: `Févr.` and `Fe\u0301vr.` both become `fevr.`."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFC", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


def _take_weekday(s: str) -> tuple[str, int | None]:
    s = s.removeprefix("le ")
    match = _WEEKDAY_PREFIX.match(s)
    if match and match["weekday"] in _WEEKDAYS:
        return s[match.end() :].removeprefix("le "), _WEEKDAYS[match["weekday"]]
    return s, None


def _numeric_date(text: str, a: str, b: str, year: str, day_first: bool | None) -> date:
    if day_first is None:
        if int(a) <= 12 and int(b) <= 12 and int(a) != int(b):
            raise AmbiguousDate(
                f"{text!r} is ambiguous: day/month or month/day; the document's order is needed"
            )
        day_first = int(a) > 12
    day, month = (a, b) if day_first else (b, a)
    try:
        return _make_date(text, year, month, day)
    except ValueError:
        order = "DD/MM/YYYY" if day_first else "MM/DD/YYYY"
        raise ValueError(f"{text!r} is not a valid date read as {order}") from None


def _make_date(text: str, year: str, month: str, day: str) -> date:
    full_year = int(year) + 2000 if len(year) == 2 else int(year)
    try:
        return date(full_year, int(month), int(day))
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date: {error}") from None
