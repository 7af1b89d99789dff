"""Lago-rendered Mistral invoices: usage invoices and advance invoices for prepaid credits."""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from parsers.base import Document, Kind, Line, Refused, Source, Usage
from parsers.checks import CENT, LINE_TOLERANCE
from parsers.foreign import foreign_provider
from parsers.lago_tables import CamelotRows, Cells, Reading, RowReader, TextRows
from parsers.lago_text import (
    ADVANCE_TITLE,
    Header,
    Totals,
    fold,
    money_samples,
    read_header,
    read_totals,
)
from parsers.models import identify
from parsers.numbers import guess_decimal_comma, parse_amount, parse_currency, parse_percent

# stdlib logging, not structlog: unconfigured (as in a parse child) it prints nothing below
# WARNING, where structlog's default would print to stdout, into `parse --json`.
log = logging.getLogger(__name__)

_LAGO = re.compile(r"\bFees\s+from\b|\bFrais\s+de\s+conso", re.IGNORECASE)
_MISTRAL = re.compile(r"\bMistral")  # capital M: billed model ids print in lower case
_MODEL_ID = re.compile(r"[a-z0-9][a-z0-9._:-]*[a-z0-9]")  # ids are lower case, no spaces
_PACKAGE = re.compile(r"\s+(?:per|par|/)\s+")
_USAGES: dict[str, Usage] = {
    **dict.fromkeys(["input", "entree"], "input"),
    **dict.fromkeys(["output", "sortie"], "output"),
    **dict.fromkeys(["cached", "cache"], "cached"),
}
_UNITS = {
    **dict.fromkeys(["pages", "page"], "pages"),
    **dict.fromkeys(["seconds", "second", "secondes", "seconde"], "seconds"),
    **dict.fromkeys(["minutes", "minute"], "minutes"),
}


@dataclass
class _Attempt:
    """The lines one reader's rows give, with what could not be read."""

    reader: str
    lines: list[Line] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class LagoParser:
    """Reads the header and totals from the page text, and the rows with the first reader
    whose rows reconcile (see parsers/lago_tables.py)."""

    name = "mistral_lago"

    def __init__(self, readers: Sequence[RowReader] = (TextRows(), CamelotRows())) -> None:
        self.readers = tuple(readers)

    def score(self, source: Source) -> float:
        if source.format != "pdf":
            return 0.0
        try:
            text = source.text
        except Refused:
            return 0.0
        if not (_LAGO.search(text) or ADVANCE_TITLE.search(text)):
            return 0.0
        if _MISTRAL.search(text):
            return 0.95
        # Lago renders other companies' invoices too: name the one it is from, if known.
        return 0.0 if foreign_provider(text) else 0.6

    def parse(self, source: Source) -> list[Document]:
        lines = [line.strip() for page in source.page_texts for line in page.splitlines()]
        lines = [line for line in lines if line]
        header = read_header(lines)
        samples = money_samples(source.text)
        decimal_comma = guess_decimal_comma(samples)
        decimal_comma = header.french if decimal_comma is None else decimal_comma
        kind: Kind = "credit_purchase" if header.advance else "invoice"
        currency, others = _currency(source.name, samples)
        document = Document(source.name, kind, currency)
        if others:
            document.warnings.append(f"amounts in {', '.join(others)} beside {currency}")
        _fill_header(document, header, len(source.page_texts))
        totals = _totals(document, lines, decimal_comma)
        attempt = self._read_lines(source, kind, totals.subtotal, decimal_comma)
        if not attempt.lines and totals.subtotal != 0:  # an invoice of nothing has no rows
            raise Refused(
                source.name,
                "this looks like a Mistral invoice, but its table of fees could not be read",
            )
        document.lines = attempt.lines
        document.warnings += attempt.warnings
        document.warnings += [
            f"a row of the fees table could not be read: {row!r}" for row in attempt.unread
        ]
        return [document]

    def _read_lines(
        self, source: Source, kind: Kind, subtotal: Decimal | None, decimal_comma: bool
    ) -> _Attempt:
        """The first reading that reconciles; else the first complete one, else the first."""
        attempts = []
        for reader in self.readers:
            attempt = _attempt(reader.read(source), kind, decimal_comma)
            log.debug("%s: %d rows read by %s", source.name, len(attempt.lines), attempt.reader)
            if _reconciles(attempt, subtotal):
                return attempt
            attempts.append(attempt)
        if not attempts:
            return _Attempt("none")
        return next((a for a in attempts if not a.unread), attempts[0])


def _fill_header(document: Document, header: Header, pages: int) -> None:
    document.number, document.issue_date = header.number, header.issue_date
    document.issuer, document.pages = header.issuer, pages
    if document.kind == "invoice" and header.period:
        document.period_start, document.period_end = header.period
    missing = [
        what
        for what, value in (
            ("invoice number", header.number),
            ("issue date", header.issue_date),
            ("service period", header.period or document.kind == "credit_purchase"),
        )
        if not value
    ]
    document.warnings += [f"no {what} found on the invoice" for what in missing]


def _totals(document: Document, lines: Sequence[str], decimal_comma: bool) -> Totals:
    totals = read_totals(lines, decimal_comma)
    document.subtotal, document.total = totals.subtotal, totals.total
    document.prepaid_credits = totals.deductions
    document.tax = totals.tax
    if totals.tax is None and totals.subtotal is not None and totals.subtotal_incl is not None:
        document.tax = totals.subtotal_incl - totals.subtotal  # no tax line (advance invoices)
    document.warnings += [f"a totals line we could not read: {label!r}" for label in totals.unknown]
    document.warnings += [
        f"no {what} found on the invoice"
        for what, value in (("subtotal", totals.subtotal), ("total", totals.total))
        if value is None
    ]
    excl, tax, incl = totals.subtotal, document.tax, totals.subtotal_incl
    if excl is not None and tax is not None and incl is not None and abs(excl + tax - incl) > CENT:
        document.warnings.append(
            f"subtotal {excl} + tax {tax} is not the subtotal incl. tax {incl}"
        )
    return totals


def _currency(name: str, samples: Sequence[str]) -> tuple[str, list[str]]:
    """The currency most amounts are printed in, and any others printed."""
    found: Counter[str] = Counter()
    for sample in samples:
        try:
            code = parse_currency(sample)
        except ValueError:
            continue
        if code:
            found[code] += 1
    if not found:
        raise Refused(name, "no currency is printed on this invoice's amounts")
    ranked = [code for code, _ in found.most_common()]
    return ranked[0], sorted(ranked[1:])


def _attempt(reading: Reading, kind: Kind, decimal_comma: bool) -> _Attempt:
    attempt = _Attempt(reading.reader, unread=list(reading.unread))
    for cells in reading.rows:
        try:
            line, warnings = _line(cells, kind, decimal_comma)
        except ValueError:
            attempt.unread.append(cells.description)
            continue
        attempt.lines.append(line)
        attempt.warnings += warnings
    return attempt


def _reconciles(attempt: _Attempt, subtotal: Decimal | None) -> bool:
    """Every row read, units x price = amount on each, and the lines add up."""
    if attempt.unread or not attempt.lines:
        return False
    for line in attempt.lines:
        assert line.quantity is not None and line.unit_price is not None
        allowed = max(CENT, abs(line.amount) * LINE_TOLERANCE)
        if abs(line.quantity * line.unit_price - line.amount) > allowed:
            return False
    lines_total = sum((line.amount for line in attempt.lines), Decimal(0))
    return subtotal is None or abs(lines_total - subtotal) <= CENT


def _line(cells: Cells, kind: Kind, decimal_comma: bool) -> tuple[Line, list[str]]:
    """One fee row as a line; ValueError where a number does not read."""
    units = parse_amount(cells.units, decimal_comma)
    amount = parse_amount(cells.amount, decimal_comma)
    parse_percent(cells.tax_rate, decimal_comma)  # read, so that a misplaced column fails here
    unit_price = _unit_price(cells.unit_price, units, amount, decimal_comma)
    description = cells.description
    if kind == "credit_purchase":
        line = Line(description, "Prepaid credits", None, "credits", None, units, "credits", amount)
        line.unit_price = unit_price
        return line, []
    return _usage_line(description, units, amount, unit_price)


def _usage_line(
    description: str, units: Decimal, amount: Decimal, unit_price: Decimal
) -> tuple[Line, list[str]]:
    """`<charge> • <model id> • <input|output|cached|pages|seconds>`: the model from its id."""
    parts = [part.strip() for part in description.split("•")]
    last = fold(parts[-1]).split() if len(parts) > 1 else []
    usage = next((_USAGES[word] for word in last if word in _USAGES), None)
    unit = "tokens" if usage else next((_UNITS[word] for word in last if word in _UNITS), None)
    named = parts[:-1] if usage or unit else parts
    ids = [part for part in named if _MODEL_ID.fullmatch(part)]
    if not ids:
        warning = f"the row {description!r} names no model id"
        return Line(
            description, description, None, "other", usage, units, unit, amount, unit_price
        ), [warning]
    model_id = next((i for i in ids if identify(i).known), ids[-1])
    match = identify(model_id)
    warnings = [] if match.known else [f"unknown model id {model_id!r}: kept as its own model"]
    # The id as billed, even a bare family name (`mistral-embed`): it is what the row bills.
    line = Line(description, match.model, model_id, match.category, usage, units, unit, amount)
    line.unit_price = unit_price
    return line, warnings


def _unit_price(text: str, units: Decimal, amount: Decimal, decimal_comma: bool) -> Decimal:
    """The price per unit; for `<price> per <size>`, per unit of what the row charged."""
    price_text, *size_text = _PACKAGE.split(text, maxsplit=1)
    price = parse_amount(price_text, decimal_comma)
    if not size_text:
        return price
    size = parse_amount(size_text[0], decimal_comma)
    if size <= 0 or units <= 0:
        raise ValueError(f"{text!r}: a package price needs a package size and units")
    # Lago bills whole packages; a pro-rata price reads the same text: keep the one printed.
    whole = price * math.ceil(units / size)
    pro_rata = price * units / size
    charged = whole if abs(whole - amount) <= abs(pro_rata - amount) else pro_rata
    return charged / units


PARSER = LagoParser()
