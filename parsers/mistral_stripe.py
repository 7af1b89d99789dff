"""Stripe-style Le Chat / Vibe subscription invoices, whose text may have no spaces at all."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from parsers.base import Document, Line, Refused, Source
from parsers.lago_text import MONEY
from parsers.numbers import guess_decimal_comma, parse_amount, parse_currency, parse_date

# Stripe draws glyph by glyph, so the text can read `Invoicenumber`: every label pattern takes
# optional whitespace between its words, and a broken dash (U+0000, or U+FFFE from pdfium).
_BROKEN_DASHES = str.maketrans({"\x00": "-", "\ufffe": "-"})
_MARKERS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (r"Invoice\s*number", r"Date\s*of\s*issue", r"Amount\s*due")
)
_PRODUCT = re.compile(r"Le\s*Chat|Vibe|Mistral")
_NUMBER = re.compile(r"Invoice\s*number\s*:?\s*(?P<value>\S+)", re.IGNORECASE)
_ISSUED = re.compile(r"Date\s*of\s*issue\s*:?\s*(?P<value>.+)", re.IGNORECASE)
_DUE, _BILL_TO = re.compile(r"^Date\s*due\b", re.I), re.compile(r"^Bill\s*to\b", re.I)
_ISSUER_ID = re.compile(r"VAT|RCS|SIRE[NT]|Tax\s*ID", re.IGNORECASE)
_HEAD = re.compile(r"Description\s+Qty\s+Unit\s*price\s+Amount", re.IGNORECASE)
_ROW = re.compile(
    rf"(?P<description>\S.*?)\s+(?P<qty>\d+(?:[.,]\d+)?)\s+(?P<price>{MONEY})\s+(?P<amount>{MONEY})"
)
_DAY = r"[A-Za-z]{3,9}\.?\s*\d{1,2}"
_PERIOD = re.compile(
    rf"(?P<start>{_DAY}(?:,\s*\d{{4}})?)\s*[\u2013\u2014-]\s*(?P<end>{_DAY},?\s*\d{{4}})"
)
_LABEL_AMOUNT = re.compile(rf"(?P<label>.*?\S)\s*(?P<amount>{MONEY})")
_TAX = re.compile(r"^(?:vat|tva|tax|salestax|gst)")

# Product names as the dashboard shows them, keyed without spaces: the text has none.
_PRODUCTS = {
    "".join(name.lower().split()): name
    for name in (
        *(f"Le Chat {plan}" for plan in ("Pro", "Team", "Enterprise", "Student")),
        *(f"Vibe {plan}" for plan in ("Pro", "Team", "Enterprise", "Student")),
        "Le Chat",
        "Vibe",
    )
}
_QUALIFIERS = {"perseat": "per seat", "peruser": "per user", "permonth": "per month"}


@dataclass
class _Table:
    """The rows of the line table with their periods, and the totals under it."""

    rows: list[tuple[Line, tuple[date, date] | None]] = field(default_factory=list)
    amounts: dict[str, Decimal] = field(default_factory=dict)
    tax: Decimal | None = None
    unread: list[str] = field(default_factory=list)


class StripeParser:
    """Le Chat / Vibe seats billed through Stripe: one line per product, category subscription."""

    name = "mistral_stripe"

    def score(self, source: Source) -> float:
        if source.format != "pdf":
            return 0.0
        try:
            text = source.text
        except Refused:
            return 0.0
        invoice_number, *others = (bool(marker.search(text)) for marker in _MARKERS)
        if invoice_number and any(others) and _PRODUCT.search(text):
            return 0.9
        return 0.0  # another Stripe merchant (OpenAI...): the registry says whose it is

    def parse(self, source: Source) -> list[Document]:
        text = source.text.translate(_BROKEN_DASHES)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        decimal_comma = guess_decimal_comma(re.findall(MONEY, text)) or False
        table = _read_table(lines, decimal_comma)
        if not table.rows:
            raise Refused(
                source.name,
                "this looks like a Mistral subscription invoice, but its lines could not be read",
            )
        document = Document(source.name, "invoice", _currency(source.name, lines))
        document.number = _match(_NUMBER, lines)
        document.issue_date = _day(_match(_ISSUED, lines) or "")
        document.issuer, document.pages = _issuer(lines), len(source.page_texts)
        document.lines = [line for line, _ in table.rows]
        _fill_period(document, [period for _, period in table.rows])
        _fill_totals(document, table)
        fields = ("invoice number", document.number), ("issue date", document.issue_date)
        document.warnings += [f"no {what} found on the invoice" for what, v in fields if not v]
        document.warnings += [
            f"a line of the invoice could not be read: {row!r}" for row in table.unread
        ]
        return [document]


def _read_table(lines: Sequence[str], decimal_comma: bool) -> _Table:
    """Rows after the `Description Qty Unit price Amount` head, each with the period line
    under it, then `<label> <amount>` totals lines."""
    table = _Table()
    start = next((i + 1 for i, line in enumerate(lines) if _HEAD.search(line)), len(lines))
    for line in lines[start:]:
        try:
            _take(table, line, decimal_comma)
        except ValueError:
            table.unread.append(line)
    return table


def _take(table: _Table, line: str, decimal_comma: bool) -> None:
    in_rows = not table.amounts and table.tax is None
    if in_rows and (row := _ROW.fullmatch(line)):
        table.rows.append((_line(row, decimal_comma), None))
    elif in_rows and table.rows and (period := _PERIOD.fullmatch(line)):
        table.rows[-1] = (table.rows[-1][0], _period(period["start"], period["end"]))
    elif total := _LABEL_AMOUNT.fullmatch(line):
        _add_total(table, total["label"], parse_amount(total["amount"], decimal_comma))
    elif in_rows and table.rows:
        table.unread.append(line)


def _line(row: re.Match[str], decimal_comma: bool) -> Line:
    description, product = _respace(row["description"])
    line = Line(
        description=description,
        model=product,
        model_id=None,
        category="subscription",
        usage=None,
        quantity=parse_amount(row["qty"], decimal_comma),
        unit="seats",
        amount=parse_amount(row["amount"], decimal_comma),
    )
    line.unit_price = parse_amount(row["price"], decimal_comma)
    return line


def _respace(text: str) -> tuple[str, str]:
    """The description with its spaces back, and the product: `LeChatTeam(perseat)` gives
    `Le Chat Team (per seat)` and `Le Chat Team`."""
    match = re.fullmatch(r"(?P<product>.*?)\s*(?:\((?P<qualifier>[^()]*)\))?", text)
    assert match is not None  # every text matches: both parts are optional
    squeezed = " ".join(match["product"].split())
    key = "".join(squeezed.lower().split())
    # Unknown products: split CamelCase where the text has no spaces at all.
    product = _PRODUCTS.get(key) or (
        squeezed if " " in squeezed else re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", squeezed)
    )
    qualifier = match["qualifier"]
    if qualifier is None:
        return product, product
    qualifier = _QUALIFIERS.get("".join(qualifier.lower().split()), " ".join(qualifier.split()))
    return f"{product} ({qualifier})", product


def _add_total(table: _Table, label: str, amount: Decimal) -> None:
    key = "".join(label.lower().split())
    if key == "totalexcludingtax":
        return  # repeats the subtotal
    if _TAX.match(key):
        table.tax = (table.tax or Decimal(0)) + amount
    elif key in ("subtotal", "total", "amountdue"):
        table.amounts[key] = amount
    else:
        table.unread.append(label)


def _fill_totals(document: Document, table: _Table) -> None:
    amounts = table.amounts
    document.subtotal = amounts.get("subtotal")
    document.total = amounts.get("total", amounts.get("amountdue"))
    document.tax = table.tax if table.tax is not None else Decimal("0.00")
    due = amounts.get("amountdue")
    for what in ("subtotal", "total"):
        if getattr(document, what) is None:
            document.warnings.append(f"no {what} found on the invoice")
    if due is not None and due != document.total:
        document.warnings.append(
            f"the amount due {due} is not the total {document.total} (a balance applied?)"
        )


def _fill_period(document: Document, periods: Sequence[tuple[date, date] | None]) -> None:
    known = [period for period in periods if period]
    if not known:
        document.warnings.append("no service period found on the invoice")
        return
    document.period_start = min(start for start, _ in known)
    document.period_end = max(end for _, end in known)


def _period(start_text: str, end_text: str) -> tuple[date, date]:
    """`Oct 1 - Nov 1, 2026` (an en dash): Stripe prints the day after the last one served."""
    end = _day(end_text)
    if end is None:
        raise ValueError(f"{end_text!r} is not a date")
    start = _day(start_text) or _day(f"{start_text}, {end.year}")
    if start is None:
        raise ValueError(f"{start_text!r} is not a date")
    if start > end:  # `Dec 1 - Jan 1, 2027`: the start is in the year before
        start = start.replace(year=start.year - 1)
    return start, end - timedelta(days=1)


def _day(text: str) -> date | None:
    """A date with the spaces that glyph-by-glyph text lacks: `October1,2026`."""
    spaced = re.sub(r"(?<=[A-Za-z.])(?=\d)", " ", text)
    spaced = re.sub(r",\s*(?=\d)", ", ", spaced)
    try:
        return parse_date(spaced)
    except ValueError:
        return None


def _match(pattern: re.Pattern[str], lines: Sequence[str]) -> str | None:
    for line in lines:
        if match := pattern.match(line):
            return match["value"].strip()
    return None


def _issuer(lines: Sequence[str]) -> str | None:
    """The block after `Date due`: the issuer's name, then its VAT or company number lines."""
    start = next((i + 1 for i, line in enumerate(lines) if _DUE.match(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if _BILL_TO.match(lines[i])), len(lines))
    block = list(lines[start : min(end, start + 10)])
    kept = block[:1] + [line for line in block[1:] if _ISSUER_ID.search(line)]
    return ", ".join(kept) or None


def _currency(name: str, lines: Sequence[str]) -> str:
    """The currency of the last amount printed (the amount due)."""
    for line in reversed(lines):
        if (match := _LABEL_AMOUNT.fullmatch(line)) and (code := parse_currency(match["amount"])):
            return code
    raise Refused(name, "no currency is printed on this invoice's amounts")


PARSER = StripeParser()
