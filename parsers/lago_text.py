"""The header fields and totals block of a Lago-rendered invoice, read from its page text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from parsers.numbers import parse_amount, parse_date

# Printed numbers: digit runs joined by single marks or no-break spaces (pdfium separates a
# row's columns with plain spaces; French thousands are U+202F, MISTRAL_FORMATS.md). Possessive,
# so that a hostile line of digits and spaces costs linear time, not exponential.
NUM = r"\d++(?:[.,'\u202f\u00a0]\d++)*+"
SPACED_NUM = r"\d++(?:[.,' \u202f\u00a0]\d++)*+"  # a cell or a totals line: one amount
CURRENCY = r"(?:[€$£]|\b[A-Z]{3}\b)"
MONEY = rf"-?(?:{CURRENCY}\s?-?{NUM}|{NUM}\s?{CURRENCY})"
SPACED_MONEY = rf"-?(?:{CURRENCY}\s?-?{SPACED_NUM}|{SPACED_NUM}\s?{CURRENCY})"
MONEY_RE = re.compile(MONEY)

_NUMBER = re.compile(
    r"^(?:Invoice\s*(?:Number|No\.?|#)|N[º°o]\.?\s*de\s*facture|Num[ée]ro\s*de\s*facture)"
    r"\s*:?\s+(?P<value>\S+)$",
    re.IGNORECASE,
)
_ISSUED = re.compile(
    r"^(?:Issue\s*Date|Date\s*of\s*issue|Date\s*d['\u2019]\s*[ée]mission)\s*:?\s+(?P<value>.+)$",
    re.IGNORECASE,
)
_PERIODS = (
    re.compile(r"\bFees\s+from\s+(?P<start>.+?)\s+to\s+(?P<end>.+?)(?=\s+Units\b|$)", re.I),
    re.compile(
        r"\bFrais\s+de\s+conso(?:\.|mmation)?\s+du\s+(?P<start>.+?)\s+au\s+(?P<end>.+?)"
        r"(?=\s+Unit[ée]s\b|$)",
        re.IGNORECASE,
    ),
)
ADVANCE_TITLE = re.compile(
    r"^\s*(?:Advance\s+invoice|Facture\s+d['\u2019]\s*acompte)\b", re.I | re.M
)
_FRENCH = re.compile(r"\b(?:Facture|Frais\s+de\s+conso|Sous\s+total|Montant)\b")
_FROM, _BILL_TO = re.compile(r"^(?:From|De)$"), re.compile(r"^(?:Bill\s+to|Factur[ée]\s+à)$")
_ISSUER_ID = re.compile(r"\b(?:RCS|SIRE[NT]|VAT|TVA|Tax\s*ID|ID\s*fiscal|Company)\b", re.I)

# Totals labels, matched on folded text (lower case, no accents). Subtotal incl. before excl.
_LABEL_AMOUNT = re.compile(rf"(?P<label>.*?\S)\s+(?P<amount>{SPACED_MONEY})")
_SUBTOTAL = r"^(?:sub-?\s?total|sous[\s-]?total)\b"
_SUBTOTAL_INCL = re.compile(_SUBTOTAL + r".*\b(?:incl|ttc)\b")
_SUBTOTAL_EXCL = re.compile(_SUBTOTAL + r"(?:.*\b(?:excl|ht|hors)\b|\s*$)")
_TAX = re.compile(
    r"^(?:vat|tva|tax|taxes|taxe|sales\s+tax|gst)\b|reverse\s+charge|autoliquidation"
    r"|not\s+applicable|non\s+applicable|exempt|exoner"
)
# Prepaid credits, credit notes and usage billed earlier in the period all come off the total.
_DEDUCTION = re.compile(
    r"^(?:prepaid\s+credits?|credit\(?s?\)?\s+prepaye|credit\s+notes?|avoirs?"
    r"|usage\s+already\s+billed)|deja\s+facture"
)
_TOTAL = re.compile(r"^total(?:\s+(?:due|a\s+payer|ttc))?$")


@dataclass(frozen=True)
class Header:
    """What the page text says above the line table."""

    number: str | None
    issue_date: date | None
    period: tuple[date, date] | None
    advance: bool
    french: bool
    issuer: str | None


@dataclass
class Totals:
    """The totals block: subtotal excl. tax, tax lines, deductions, total."""

    subtotal: Decimal | None = None
    subtotal_incl: Decimal | None = None
    tax: Decimal | None = None
    deductions: Decimal = Decimal(0)
    total: Decimal | None = None
    unknown: list[str] = field(default_factory=list)


def read_header(lines: Sequence[str]) -> Header:
    """Number, issue date, service period, kind, language and issuer from the page lines."""
    text = "\n".join(lines)
    return Header(
        number=_first(_NUMBER, lines),
        issue_date=_date(_first(_ISSUED, lines)),
        period=_period(lines),
        advance=bool(ADVANCE_TITLE.search(text)),
        french=bool(_FRENCH.search(text)),
        issuer=_issuer(lines),
    )


def read_totals(lines: Sequence[str], decimal_comma: bool | None) -> Totals:
    """The totals block from the first subtotal line down to the total."""
    totals, pending, started = Totals(), "", False
    for line in lines:
        match = _LABEL_AMOUNT.fullmatch(line)
        label = fold(f"{pending} {match['label']}") if match else ""
        if not started and not (match and _SUBTOTAL_EXCL.search(label)):
            continue
        started = True
        if match is None:  # a label wrapped onto a line of its own: it goes with the next
            pending = f"{pending} {line}".strip()
            continue
        pending = ""
        try:
            _add(totals, label, parse_amount(match["amount"], decimal_comma))
        except ValueError:
            totals.unknown.append(line)  # an amount that does not read: said, never guessed
        if totals.total is not None:
            break
    return totals


def money_samples(text: str) -> list[str]:
    """Every amount printed with a currency, to judge the decimal mark and the currency."""
    return MONEY_RE.findall(text)


def fold(text: str) -> str:
    """Lower case, no accents, single spaces: labels compare in this form."""
    bare = unicodedata.normalize("NFD", text)
    return " ".join("".join(c for c in bare if not unicodedata.combining(c)).lower().split())


def _add(totals: Totals, label: str, amount: Decimal) -> None:
    if _SUBTOTAL_INCL.search(label):
        totals.subtotal_incl = amount
    elif _SUBTOTAL_EXCL.search(label):
        totals.subtotal = amount
    elif _DEDUCTION.search(label):
        totals.deductions += abs(amount)
    elif _TOTAL.search(label):
        totals.total = amount
    elif _TAX.search(label):
        totals.tax = (totals.tax or Decimal(0)) + amount
    else:
        totals.unknown.append(label)


def _first(pattern: re.Pattern[str], lines: Iterable[str]) -> str | None:
    for line in lines:
        if match := pattern.match(line):
            return match["value"].strip()
    return None


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return parse_date(text)
    except ValueError:
        return None


def _period(lines: Iterable[str]) -> tuple[date, date] | None:
    for line in lines:
        for pattern in _PERIODS:
            if match := pattern.search(line):
                start, end = _date(match["start"]), _date(match["end"])
                return (start, end) if start and end else None
    return None


def _issuer(lines: Sequence[str]) -> str | None:
    """The `From` block's first line (the name) and its company and tax id lines."""
    start = next((i for i, line in enumerate(lines) if _FROM.match(line)), None)
    if start is None:
        return None
    block: list[str] = []
    for line in lines[start + 1 :]:
        if _BILL_TO.match(line) or len(block) > 10:
            break
        block.append(line)
    kept = block[:1] + [line for line in block[1:] if _ISSUER_ID.search(line)]
    return ", ".join(kept) or None
