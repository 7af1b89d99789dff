"""CSV usage exports, read by their headers (English or French) into one usage_export document.

Representation (CONTRACT.md gives a line one `usage`, one `quantity` and one `amount`):
- Most exports give one cost per row for input, output and cached tokens together. Then each
  model gets one money line (usage null, quantity null, amount = its cost over the period) and
  one zero-amount line per usage (quantity = its tokens, unit `tokens`): money and tokens each
  add up once, and no cost is split by a guess.
- Where the export splits the cost by usage (`Input cost`, `Output cost`...), or has one row
  per usage (a `Type` column of input/output/cached beside `Tokens` and `Cost`), each usage
  line carries its own tokens and amount. A row cost beside split costs is not used (warning).
- Without a cost column the lines carry tokens only, amount 0, with a warning.
- Lines add up over the whole period per model id and usage, sorted by model; lines with
  neither tokens nor money are left out. Amounts are the exact sums of the printed costs.
- A total row (first cell `Total`, `Sum`, `Somme`..., or a last row without a model) is never
  counted: the last one is compared with the rows above (warning when they differ by more than
  a cent); any other one is skipped as a subtotal, with a warning.
- Currency from a currency column, the cost header (`Cost (EUR)`, `Coût (€)`) or symbols in the
  cost cells, which must agree; with none, EUR (Mistral's default billing currency) and a
  warning. subtotal = total = the sum of the lines; tax is null (exports do not state it).
- Dates: daily (`2026-10-14`, `14/10/2026`, `14 oct. 2026`) or monthly (`2026-10`, `10/2026`,
  `octobre 2026`: the whole month). The period runs from the first to the last day covered.
  Numeric dates are day first where a day above 12 says so, or the headers are French, or the
  decimal mark is a comma; month first only where a date says so; else refused if ambiguous.
- A table none of whose models is in the catalogue is refused (another provider's export must
  not become Mistral spend); an unknown id beside known ones is kept, with a warning.
- Row numbers in refusals are the file's line numbers, as a spreadsheet shows them.
"""

from __future__ import annotations

import calendar
import csv
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from itertools import chain, islice, repeat
from typing import TypeVar

import pandas as pd

from parsers.base import Document, Line, Refused, Source, Usage
from parsers.models import ModelMatch, identify
from parsers.numbers import (
    AmbiguousDate,
    AmbiguousNumber,
    guess_day_first,
    guess_decimal_comma,
    parse_amount,
    parse_currency,
    parse_date,
)

MAX_ROWS = 100_000  # RELIABILITY.md
MAX_FIELD_BYTES = 128 * 1024  # RELIABILITY.md
HEADER_SEARCH_LINES = 10  # a title line or Excel's `sep=;` may come before the header
DELIMITERS = (",", ";", "\t")
DEFAULT_CURRENCY = "EUR"  # Mistral bills in EUR unless the Organization chose USD
CENT = Decimal("0.01")
USAGES: tuple[Usage, ...] = ("input", "output", "cached")

# Header names as _key() leaves them (folded, no currency, punctuation as one space), by role.
_ROLES: dict[str, str] = {
    "date": "date|day|jour|month|mois|period|periode|usage date|date d utilisation|timestamp",
    "workspace": "workspace|workspace name|espace de travail|project|projet",
    "model": "model|modele|model name|nom du modele|models|modeles",
    "model_id": "model id|id du modele|identifiant du modele|billing metric",
    "usage": "usage type|type|type d usage|token type|type de token|type de tokens",
    "tokens": "tokens|total tokens|tokens total|jetons|quantity|quantite|units|unites",
    "tokens.input": "input tokens|tokens d entree|tokens en entree|tokens entree|tokens input"
    "|prompt tokens|input|entree|jetons d entree",
    "tokens.output": "output tokens|tokens de sortie|tokens en sortie|tokens sortie"
    "|tokens output|completion tokens|output|sortie|jetons de sortie",
    "tokens.cached": "cached tokens|cached input tokens|tokens en cache|tokens caches"
    "|tokens mis en cache|tokens cached|cached|cache|jetons en cache",
    "cost": "cost|cout|amount|montant|total cost|cout total|total|spend|depense|depenses"
    "|montant ht|cout ht|cost excl tax|cost excl vat|billed cost|total amount|montant total",
    "cost.input": "input cost|cout d entree|cout entree|cout en entree",
    "cost.output": "output cost|cout de sortie|cout sortie|cout en sortie",
    "cost.cached": "cached cost|cout en cache|cout du cache|cout cache",
    "currency": "currency|devise|monnaie",
}
_ROLE_OF = {name: role for role, names in _ROLES.items() for name in names.split("|")}
_USAGE_OF: dict[str, Usage] = {
    **{name: usage for usage in USAGES for name in _ROLES[f"tokens.{usage}"].split("|")},
    "prompt": "input",
    "completion": "output",
}
_TOTAL_LABELS = frozenset(
    {"total", "totals", "totaux", "sum", "somme", "grand total", "total general", "subtotal"}
    | {"sous total"}
)
_FRENCH_WORDS = frozenset(
    {"jour", "mois", "periode", "modele", "cout", "montant", "devise", "entree", "sortie"}
    | {"jetons", "espace", "quantite", "depense", "depenses", "unites", "utilisation"}
)
_CURRENCY_WORDS = re.compile(r"[a-z]{0,2}\$|[€£]|\b(?:eur|usd|gbp|chf)\b")
_MONTH_NUMERIC = (
    re.compile(r"(?P<year>\d{4})[-/.](?P<month>\d{1,2})"),
    re.compile(r"(?P<month>\d{1,2})[-/.](?P<year>\d{4})"),
)
_MONTH_NAMED = re.compile(r"[a-z\u00e0-\u00ff]+\.?[\s\-/]+\d{4}")
_SEP_HINT = re.compile(r'"?sep=(?P<delimiter>.)"?', re.IGNORECASE)
_PLAIN_INTEGER = re.compile(r"[0-9]+")
# Digits, thousands grouped by spaces only (the one separator parse_amount never doubts; the
# first group not 0, as `0 123` is a typo parse_amount refuses), then at most one decimal mark.
_PLAIN_NUMBER = re.compile(
    r"(?P<integer>[0-9]+|[1-9][0-9]{0,2}(?:[ \u00a0\u202f][0-9]{3})+)"
    r"(?:(?P<mark>[.,])(?P<fraction>[0-9]+))?"
)
_CURRENCY_SIGN = re.compile(r"[^\W\d_]|[€$£]")  # a letter or a symbol: a currency is named
_SPACES = re.compile(r"[ \u00a0\u202f]")
_DIGIT_RUNS = re.compile(r"[0-9]+")
_SIGNS = frozenset("€$£")  # the currency signs a cost cell may carry before or after its number
_SEVERAL = "several"  # a cell form that names several currencies
_SIGN_CODES = {sign: code for sign in sorted(_SIGNS) if (code := parse_currency(sign))}
assert len(_SIGN_CODES) == len(_SIGNS)  # € EUR, $ USD, £ GBP
_PANDAS_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_USAGE_ORDER = {None: 0, "input": 1, "output": 2, "cached": 3}
_WHAT = {usage: (f"{usage} tokens", f"{usage} cost") for usage in USAGES}  # named in errors
_ZERO = Decimal(0)  # Decimals are immutable: one zero serves every empty cell
_ONE = Decimal(1)
_EXACT_DIGITS = 28  # the default context's precision: quantize(_ONE) of such an integer is itself
# A line of a column's text (one stripped cell a line) that is no plain count. Looked for line by
# line: one fullmatch over the whole column would keep backtracking state for every line.
_NOT_A_COUNT = re.compile(rf"^(?![0-9]{{0,{_EXACT_DIGITS}}}$)", re.MULTILINE)
_SIGN_AND_SPACE = re.compile(r"[^\S\n]*[€$£][^\S\n]*")
_ZERO_LINE = re.compile(r"^[0.]*$", re.MULTILINE)  # a zero (or an empty cell) of a cost column

_Key = tuple[str, str | None, str, Usage | None, str | None]  # model, id, category, usage, unit


class _Problem(ValueError):
    """What is wrong with the file, in the customer's words; becomes a Refused."""


@dataclass(frozen=True)
class _Header:
    """The header line: where it is, its delimiter, its cells and which role each plays."""

    index: int  # 0-based line index in the text
    delimiter: str
    cells: tuple[str, ...]
    roles: dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class _Columns:
    """The column index of each role (None where the export has no such column)."""

    model: int
    date: int
    usage: int | None
    currency: int | None
    tokens: dict[Usage | None, int]
    costs: dict[Usage | None, int]

    @cached_property
    def steps(self) -> tuple[_Step, ...]:
        """What _parts reads from every row, worked out once rather than once a row."""
        steps = [
            _Step(usage, self.tokens.get(usage), self.costs.get(usage), *_WHAT[usage])
            for usage in USAGES
            if usage in self.tokens or usage in self.costs
        ]
        split_costs = any(usage in self.costs for usage in USAGES)
        split_tokens = any(usage in self.tokens for usage in USAGES)
        if not split_costs and (None in self.costs or None in self.tokens):
            # A total-tokens column beside per-usage ones would count the tokens twice.
            index = None if split_tokens else self.tokens.get(None)
            steps.append(_Step(None, index, self.costs.get(None), "tokens", "cost"))
        return tuple(steps)


@dataclass(frozen=True)
class _Step:
    """One part of a row: the usage, its tokens and cost columns, and their names in errors."""

    usage: Usage | None
    tokens: int | None
    cost: int | None
    tokens_what: str
    cost_what: str


# Rows and parts are made 100,000 times for a large export: plain slotted dataclasses, whose
# construction costs half that of frozen ones.
@dataclass(slots=True)
class _Row:
    """One table row and its line number in the file."""

    line: int
    cells: tuple[str, ...]

    def cell(self, index: int | None) -> str:
        return "" if index is None else self.cells[index].strip()


@dataclass(slots=True)
class _Part:
    """What one row says about one usage of one model."""

    usage: Usage | None
    unit: str | None
    quantity: Decimal | None
    amount: Decimal


@dataclass(slots=True)
class _Sum:
    """A line being added up over the period."""

    description: str
    quantity: Decimal | None = None
    amount: Decimal = Decimal(0)

    def add(self, part: _Part) -> None:
        self.add_values(part.quantity, part.amount)

    def add_values(self, quantity: Decimal | None, amount: Decimal) -> None:
        if quantity is not None:
            self.quantity = (self.quantity or _ZERO) + quantity
        self.amount += amount


class UsageCsvParser:
    """Mistral usage exports as CSV, whatever tool wrote them."""

    name = "mistral_usage_csv"

    def score(self, source: Source) -> float:
        if source.format != "csv":
            return 0.0
        header = _find_header(source.text)
        if header is None:
            return 0.0
        if any(role.startswith("cost") for role in header.roles):
            return 0.9
        # Tokens without any cost: readable, but it says nothing about spend.
        return 0.5 if any(role.startswith("tokens") for role in header.roles) else 0.0

    def parse(self, source: Source) -> list[Document]:
        try:
            return [_document(source.name, source.text)]
        except _Problem as problem:
            raise Refused(source.name, str(problem)) from None


PARSER = UsageCsvParser()


# --- the header


def _find_header(text: str) -> _Header | None:
    """The first of the opening lines that names a model (or model id) column."""
    hint = None
    for index, raw in enumerate(text.split("\n", HEADER_SEARCH_LINES)[:HEADER_SEARCH_LINES]):
        line = raw.rstrip("\r")
        if match := _SEP_HINT.fullmatch(line.strip()):
            hint = match["delimiter"]
            continue
        delimiter = hint or max(DELIMITERS, key=lambda d: len(_split(line, d)))
        cells = _split(line, delimiter)
        roles: dict[str, tuple[int, ...]] = {}
        for column, cell in enumerate(cells):
            if role := _ROLE_OF.get(_key(cell)):
                roles[role] = (*roles.get(role, ()), column)
        if "model" in roles or "model_id" in roles:
            return _Header(index, delimiter, tuple(cells), roles)
    return None


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a cell beyond csv's field limit: no header of ours
        return []


def _key(text: str) -> str:
    """`Coût (€)` → `cout`, `Tokens d'entrée` → `tokens d entree`, `Cost in EUR` → `cost`."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^a-z0-9]+", " ", _CURRENCY_WORDS.sub(" ", bare)).split()
    while words and words[-1] in ("in", "en"):
        words.pop()
    return " ".join(words)


def _columns(header: _Header) -> _Columns:
    """Each role's column; two columns claiming one role make the file ambiguous."""
    single: dict[str, int] = {}
    for role, indexes in header.roles.items():
        if len(indexes) > 1:
            names = " and ".join(repr(header.cells[i]) for i in indexes)
            raise _Problem(f"two columns could be the {_label(role)}: {names}")
        single[role] = indexes[0]
    if "date" not in single:
        raise _Problem("the CSV has no date or month column, so its period is unknown")
    return _Columns(
        model=single["model_id"] if "model_id" in single else single["model"],  # the billed id
        date=single["date"],
        usage=single.get("usage"),
        currency=single.get("currency"),
        tokens=_by_usage(single, "tokens"),
        costs=_by_usage(single, "cost"),
    )


def _by_usage(single: dict[str, int], kind: str) -> dict[Usage | None, int]:
    found: dict[Usage | None, int] = {}
    for usage in USAGES:
        if f"{kind}.{usage}" in single:
            found[usage] = single[f"{kind}.{usage}"]
    if kind in single:
        found[None] = single[kind]
    return found


def _label(role: str) -> str:
    kind, _, usage = role.partition(".")
    return f"{usage} {kind}" if usage else kind


# --- the table


def _table(text: str) -> tuple[_Header, _Columns, list[_Row]]:
    header = _find_header(text)
    if header is None:
        raise _Problem("this table has no model column")
    columns = _columns(header)
    rows = _rows(text, header)
    if not rows:
        raise _Problem("the CSV has a header but no rows")
    return header, columns, rows


def _rows(text: str, header: _Header) -> list[_Row]:
    """The non-blank rows under the header, within the row and field limits."""
    body = text.split("\n", header.index)[-1] if header.index else text
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            sep=header.delimiter,
            header=None,
            dtype=str,  # every cell stays text: no number is ever read as a float
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,  # so that row numbers stay line numbers
            nrows=MAX_ROWS + 2,
            engine="c",
        )
    except pd.errors.ParserError as error:
        raise _Problem(_pandas_reason(str(error), header.index)) from None
    if len(frame) > MAX_ROWS + 1:
        raise _Problem(f"the CSV has more than {MAX_ROWS:,} rows; we read at most {MAX_ROWS:,}")
    # Column by column, then zipped into rows: a third faster than frame.to_numpy().tolist().
    columns: list[list[str]] = [frame[c].to_numpy(dtype=object).tolist() for c in frame.columns]
    first_line = header.index + 1
    rows = [
        _Row(first_line + number, cells)
        for number, cells in enumerate(islice(zip(*columns, strict=True), 1, None), start=1)
        if cells[0].strip() or "".join(cells).strip()  # a cell other than whitespace
    ]
    # Only a body that large can hold such a field; then a screen of all cells at C speed
    # before the check row by row (which names the row).
    limit = MAX_FIELD_BYTES // 4
    if len(body) > limit and max(map(len, chain.from_iterable(columns)), default=0) > limit:
        _check_fields(rows)
    return rows


def _pandas_reason(message: str, offset: int) -> str:
    if match := _PANDAS_FIELDS.search(message):
        expected, line, saw = match.groups()
        return (
            f"row {int(line) + offset} has {saw} fields where the header has {expected} "
            "(a decimal comma in a comma-separated file must be quoted)"
        )
    if "EOF inside string" in message:
        return "the CSV ends inside a quoted field (was it cut off?)"
    return "the CSV cannot be read as a table"


def _check_fields(rows: Iterable[_Row]) -> None:
    for row in rows:
        for cell in row.cells:
            if len(cell) > MAX_FIELD_BYTES // 4 and len(cell.encode()) > MAX_FIELD_BYTES:
                raise _Problem(f"row {row.line}: a field is larger than 128 KiB")


# --- cells


@dataclass
class _Reader:
    """Reads cells by the file's conventions, remembering the currencies its costs name."""

    decimal_comma: bool | None
    day_first: bool | None
    currencies: set[str] = field(default_factory=set)
    spans: dict[str, tuple[date, date]] = field(default_factory=dict)
    currency_forms: dict[str, str] = field(default_factory=dict)

    def number(self, row: _Row, index: int | None, what: str) -> Decimal | None:
        if index is None:
            return None
        cell = row.cells[index].strip()
        if not cell:
            return _ZERO  # an empty cell: none of that usage
        try:
            return _amount(cell, self.decimal_comma)
        except AmbiguousNumber:
            raise _Problem(
                f"row {row.line}: {what} {cell!r} is ambiguous: it reads differently with a "
                "decimal comma and with a decimal point"
            ) from None
        except ValueError:
            raise _Problem(f"row {row.line}: {what} {cell!r} is not a number") from None

    def tokens(self, row: _Row, index: int | None, what: str) -> Decimal | None:
        if index is None:
            return None
        cell = row.cells[index].strip()
        if len(cell) <= _EXACT_DIGITS and _PLAIN_INTEGER.fullmatch(cell):
            return Decimal(cell)  # most cells: a count, whole, positive, already quantized
        value = self.number(row, index, what)
        assert value is not None
        if value < 0 or value != value.to_integral_value():
            raise _Problem(f"row {row.line}: {what} {row.cell(index)!r} is not a token count")
        return value.quantize(_ONE)  # `1234.0` and `1.2e3` are counts too

    def money(self, row: _Row, index: int | None, what: str) -> Decimal:
        if index is None:
            return _ZERO
        value = self.number(row, index, what)
        cell = row.cells[index].strip()
        if _CURRENCY_SIGN.search(cell):
            self.currencies.add(self.currency(cell, row, what))
        return value or _ZERO

    def currency(self, cell: str, row: _Row, what: str) -> str:
        """_currency(cell, row, what), read once per form of cell: the currency a cell names
        does not depend on its digits (no symbol or code holds one), so `€12.50` and `€3.07`
        are read as one form, `€0.00`."""
        form = _DIGIT_RUNS.sub("0", cell)
        code = self.currency_forms.get(form)
        if code is None:
            try:
                code = parse_currency(form.upper()) or ""
            except ValueError:
                code = _SEVERAL
            self.currency_forms[form] = code
        if code and code != _SEVERAL:
            return code
        return _currency(cell, row, what)  # the refusal, in the row's own words

    def span(self, row: _Row, index: int) -> tuple[date, date]:
        cell = row.cell(index)
        if cell not in self.spans:  # a month's export repeats ~31 dates: read each once
            self.spans[cell] = self._span(row, cell)
        return self.spans[cell]

    def _span(self, row: _Row, cell: str) -> tuple[date, date]:
        if not cell:
            raise _Problem(f"row {row.line}: no date")
        if month := _month(cell, row):
            return month
        try:
            day = parse_date(cell, self.day_first)
        except AmbiguousDate:
            raise _Problem(
                f"row {row.line}: date {cell!r} is ambiguous: day/month or month/day"
            ) from None
        except ValueError:
            raise _Problem(f"row {row.line}: date {cell!r} is not a date") from None
        return day, day


def _currency(cell: str, row: _Row, what: str) -> str:
    try:
        code = parse_currency(cell.upper())
    except ValueError:
        raise _Problem(f"row {row.line}: {what} {cell!r} names several currencies") from None
    if code is None:
        raise _Problem(f"row {row.line}: {what} {cell!r} is not a currency we know")
    return code


def _amount(cell: str, decimal_comma: bool | None) -> Decimal:
    """parse_amount(cell, decimal_comma), read directly for the plain forms that fill most
    cells, with or without one currency sign (`€12.50`, `0,0362 €`): parse_amount does far
    more per cell, too slow for 100,000 rows within the parse's 10 s of CPU. Each shortcut
    gives exactly what parse_amount gives."""
    number = _sign_stripped(cell) or cell
    if _PLAIN_INTEGER.fullmatch(number):
        return Decimal(number)
    if decimal_comma is not None:
        mark = "," if decimal_comma else "."
        match = _PLAIN_NUMBER.fullmatch(number)
        if match and match["mark"] in (None, mark):
            return Decimal(_SPACES.sub("", number).replace(mark, "."))
    return parse_amount(cell, decimal_comma)


def _sign_stripped(cell: str) -> str | None:
    """The number of a cell holding one plain number and one currency sign before or after
    it (`€12.50`, `0,0362 €`), as parse_amount strips the sign; None for any other cell."""
    if cell[:1] in _SIGNS:
        number = cell[1:].strip()
    elif cell[-1:] in _SIGNS:
        number = cell[:-1].strip()
    else:
        return None
    if not _PLAIN_NUMBER.fullmatch(number):
        return None
    return number


def _decimal_comma(cells: Iterable[str]) -> bool | None:
    """guess_decimal_comma over the distinct cells, voting directly for the plain forms."""
    votes: set[bool] = set()
    for cell in dict.fromkeys(cells):
        match = _PLAIN_NUMBER.fullmatch(_sign_stripped(cell) or cell)
        if match is None:
            vote = guess_decimal_comma([cell])
        elif match["mark"] is None or _ambiguous(match["integer"], match["fraction"]):
            vote = None
        else:
            vote = match["mark"] == ","
        if vote is not None:
            votes.add(vote)
    return votes.pop() if len(votes) == 1 else None


def _ambiguous(integer: str, fraction: str) -> bool:
    """`1,234` or `1.234`: one to three digits (not 0), a mark, three digits (numbers.py)."""
    return integer.isdigit() and 1 <= len(integer) <= 3 and integer != "0" and len(fraction) == 3


def _month(cell: str, row: _Row) -> tuple[date, date] | None:
    """The first and last day of a month written alone (`2026-10`, `10/2026`, `oct. 2026`)."""
    text = cell.lower()
    for pattern in _MONTH_NUMERIC:
        if match := pattern.fullmatch(text):
            year, month = int(match["year"]), int(match["month"])
            if not 1 <= month <= 12:
                raise _Problem(f"row {row.line}: date {cell!r} is not a date")
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    if _MONTH_NAMED.fullmatch(text):
        try:
            first = parse_date(f"1 {text}")
        except ValueError:
            return None
        last = calendar.monthrange(first.year, first.month)[1]
        return first, first.replace(day=last)
    return None


# --- rows into parts


def _parts(row: _Row, columns: _Columns, reader: _Reader) -> list[_Part]:
    """What one row says, per usage (the steps of _Columns.steps, in their order)."""
    if columns.usage is not None:
        return [_usage_row_part(row, columns, reader)]
    parts = []
    for step in columns.steps:
        tokens = reader.tokens(row, step.tokens, step.tokens_what)
        amount = reader.money(row, step.cost, step.cost_what)
        parts.append(_Part(step.usage, None if tokens is None else "tokens", tokens, amount))
    return parts


def _usage_row_part(row: _Row, columns: _Columns, reader: _Reader) -> _Part:
    """A row of an export with one row per usage (`Type`: input, output, cached, pages...)."""
    word = row.cell(columns.usage)
    usage = _USAGE_OF.get(_key(word))
    amount = reader.money(row, columns.costs.get(None), "cost")
    if usage is not None:
        tokens = reader.tokens(row, columns.tokens.get(None), f"{usage} tokens")
        return _Part(usage, None if tokens is None else "tokens", tokens, amount)
    # Another unit (pages, seconds): its quantity may be fractional, and its name is the unit.
    quantity = reader.number(row, columns.tokens.get(None), "quantity")
    return _Part(None, word.lower() or None, quantity, amount)


def _model(row: _Row, columns: _Columns, known: dict[str, ModelMatch]) -> ModelMatch:
    cell = row.cell(columns.model)
    if not cell:
        raise _Problem(f"row {row.line}: no model")
    if cell not in known:
        # Console keys read `<alias>::<model id>`: the id is what is billed.
        known[cell] = identify(cell.rpartition("::")[2].strip() or cell)
    return known[cell]


# --- the document


def _document(name: str, text: str) -> Document:
    header, columns, rows = _table(text)
    reader = _reader(header, rows, columns)
    data, totals = _split_totals(rows, columns)
    if not data:
        raise _Problem("the CSV has a total row but no usage rows")
    known: dict[str, ModelMatch] = {}
    sums, first, last = _add_up(data, columns, reader, known)
    if not any(match.known for match in known.values()):
        # Another provider's export (gpt-4o, claude-...) must not become Mistral spend.
        names = ", ".join(list(dict.fromkeys(match.model for match in known.values()))[:3])
        raise _Problem(f"none of the models in this table is a Mistral model ({names})")
    lines = _lines(sums)
    warnings = _column_warnings(header, columns) + _model_warnings(known.values())
    warnings += _total_warnings(data, totals, columns, reader)
    currency, currency_warnings = _document_currency(header, data, columns, reader)
    spend = sum((line.amount for line in lines), Decimal(0)) if columns.costs else None
    return Document(
        file=name,
        kind="usage_export",
        currency=currency,
        period_start=first,
        period_end=last,
        subtotal=spend,
        total=spend,
        lines=lines,
        warnings=warnings + currency_warnings,
    )


def _reader(header: _Header, rows: Sequence[_Row], columns: _Columns) -> _Reader:
    """The file's decimal mark (its costs tell, else its token counts) and date order (its
    dates tell, else French headers or a decimal comma mean day first, as everywhere they
    are used; else each numeric date must be unambiguous)."""
    mark = _decimal_comma(r.cell(i) for i in columns.costs.values() for r in rows)
    if mark is None:
        mark = _decimal_comma(r.cell(i) for i in columns.tokens.values() for r in rows)
    day_first = guess_day_first(dict.fromkeys(row.cell(columns.date) for row in rows))
    if day_first is None and (mark or _is_french(header)):
        day_first = True
    return _Reader(mark, day_first)


def _is_french(header: _Header) -> bool:
    return any(word in _FRENCH_WORDS for cell in header.cells for word in _key(cell).split())


def _split_totals(rows: Sequence[_Row], columns: _Columns) -> tuple[list[_Row], list[_Row]]:
    """The usage rows, and the total rows (labelled anywhere, or a last row with no model)."""
    data: list[_Row] = []
    totals: list[_Row] = []
    for row in rows:
        first = row.cells[0].strip() or next((c.strip() for c in row.cells if c.strip()), "")
        labelled = first[:1].isalpha() and _key(first) in _TOTAL_LABELS
        unnamed_last = row is rows[-1] and len(rows) > 1 and not row.cell(columns.model)
        (totals if labelled or unnamed_last else data).append(row)
    return data, totals


def _add_up(
    rows: Sequence[_Row], columns: _Columns, reader: _Reader, known: dict[str, ModelMatch]
) -> tuple[dict[_Key, _Sum], date, date]:
    """The period's sums per model and usage, and the first and last day the rows cover."""
    sums: dict[_Key, _Sum] = {}
    spans = []
    if columns.usage is not None:  # a row per usage: its usage and unit are in the row
        for row in rows:
            spans.append(reader.span(row, columns.date))
            match = _model(row, columns, known)
            for part in _parts(row, columns, reader):
                _sum(sums, match, row.cell(columns.model), part.usage, part.unit).add(part)
        return sums, min(span[0] for span in spans), max(span[1] for span in spans)
    # A row per model: _parts's steps, with the lines of each model cell found once (a step's
    # usage and unit are the same on every row), in the order _parts would add them.
    # Each step's tokens and cost, one value a row: columns whose every cell has a plain form
    # are read whole (_token_column, _cost_column) and cannot fail; the others are read cell
    # by cell as the loop asks for them, so in _parts's order (row, step, tokens then cost).
    steps = columns.steps
    values: list[tuple[Iterator[Decimal | None], Iterator[Decimal]]] = [
        (
            _token_column(rows, step.tokens)
            or _cell_by_cell(rows, reader.tokens, step.tokens, step.tokens_what, None),
            _cost_column(rows, step.cost, reader)
            or _cell_by_cell(rows, reader.money, step.cost, step.cost_what, _ZERO),
        )
        for step in steps
    ]
    by_model: dict[str, list[_Sum]] = {}
    for row in rows:
        spans.append(reader.span(row, columns.date))
        match = _model(row, columns, known)
        model = row.cells[columns.model].strip()
        lines = by_model.get(model)
        if lines is None:
            lines = by_model[model] = [
                _sum(sums, match, model, step.usage, None if step.tokens is None else "tokens")
                for step in steps
            ]
        for line, (tokens, costs) in zip(lines, values, strict=True):
            line.add_values(next(tokens), next(costs))
    return sums, min(span[0] for span in spans), max(span[1] for span in spans)


_T = TypeVar("_T")


def _cell_by_cell(
    rows: Sequence[_Row],
    read: Callable[[_Row, int | None, str], _T],
    index: int | None,
    what: str,
    no_column: _T,
) -> Iterator[_T]:
    """read(row, index, what) for each row in turn, when asked; `no_column` (what `read`
    gives without a column) on every row where there is no column."""
    if index is None:
        return repeat(no_column)
    return (read(row, index, what) for row in rows)


def _token_column(rows: Sequence[_Row], index: int | None) -> Iterator[Decimal] | None:
    """What _Reader.tokens reads from each row's cell of the column, where every cell is
    empty or a count of at most _EXACT_DIGITS digits (None otherwise): checked, stripped
    and split once over the whole column, at C speed."""
    text = _column_text(rows, index)
    if text is None or _NOT_A_COUNT.search(text):
        return None
    return _decimals(text.split("\n"))


def _cost_column(
    rows: Sequence[_Row], index: int | None, reader: _Reader
) -> Iterator[Decimal] | None:
    """What _Reader.money reads from each row's cell of the column, where every cell is empty
    or a number that _amount reads directly (plain, or with one currency sign before or after
    it), noting the currencies of the signs; None otherwise."""
    text = _column_text(rows, index)
    if text is None or _not_a_plain_cost(reader.decimal_comma).search(text):
        return None
    signs = [sign for sign in _SIGN_CODES if sign in text]
    if signs:
        text = _SIGN_AND_SPACE.sub("", text)
        reader.currencies.update(_SIGN_CODES[sign] for sign in signs)
    text = _SPACES.sub("", text)
    if reader.decimal_comma:
        text = text.replace(",", ".")
    # _Reader.money's `value or _ZERO`: every zero (`0.00`) is read as _ZERO
    zeros = _ZERO_LINE.search(text) is not None
    values = _decimals(text.split("\n"))
    return (value or _ZERO for value in values) if zeros else values


def _column_text(rows: Sequence[_Row], index: int | None) -> str | None:
    """The column's stripped cells, one a line; None where it has no column or a cell holds
    a line break."""
    if index is None:
        return None
    text = "\n".join([row.cells[index].strip() for row in rows])
    return text if text.count("\n") == len(rows) - 1 else None


def _decimals(cells: list[str]) -> Iterator[Decimal]:
    """Decimal of each cell, _ZERO for an empty one (as _Reader.number reads it)."""
    if "" in cells:
        return (Decimal(cell) if cell else _ZERO for cell in cells)
    return map(Decimal, cells)


@functools.cache
def _not_a_plain_cost(decimal_comma: bool | None) -> re.Pattern[str]:
    """A line that _amount would not read with its shortcuts, by the file's decimal mark:
    without one, plain integers only; with one, _PLAIN_NUMBER with that mark, with or
    without a sign. Empty lines are empty cells: read."""
    if decimal_comma is None:
        plain = "[0-9]+"
    else:
        mark = re.escape("," if decimal_comma else ".")
        plain = rf"(?:[0-9]+|[1-9][0-9]{{0,2}}(?:[ \u00a0\u202f][0-9]{{3}})+)(?:{mark}[0-9]+)?"
    space = r"[^\S\n]*"
    line = rf"(?:{plain}|[€$£]{space}{plain}|{plain}{space}[€$£])?"
    return re.compile(rf"^(?!{line}$)", re.MULTILINE)


def _sum(
    sums: dict[_Key, _Sum], match: ModelMatch, model: str, usage: Usage | None, unit: str | None
) -> _Sum:
    """The line of one model, usage and unit, named after the first row's model cell."""
    key = (match.model, match.model_id, match.category, usage, unit)
    line = sums.get(key)
    if line is None:
        named = (model, usage or unit)
        line = sums[key] = _Sum(" • ".join(filter(None, named)))
    return line


def _lines(sums: dict[_Key, _Sum]) -> list[Line]:
    lines = [
        Line(s.description, model, model_id, category, usage, s.quantity, unit, s.amount)
        for (model, model_id, category, usage, unit), s in sums.items()
        if s.amount or s.quantity
    ]
    return sorted(lines, key=_line_order)


def _line_order(line: Line) -> tuple[str, str, int, str]:
    return line.model.lower(), line.model_id or "", _USAGE_ORDER[line.usage], line.unit or ""


def _total_warnings(
    data: Sequence[_Row], totals: Sequence[_Row], columns: _Columns, reader: _Reader
) -> list[str]:
    """A total row is never counted; the one after the last usage row is checked."""
    final = totals[-1] if totals and totals[-1].line > data[-1].line else None
    warnings = [
        f"row {row.line} looks like a subtotal and was skipped"
        for row in totals
        if row is not final
    ]
    if final is None or not columns.costs:
        return warnings
    total = _money(final, columns, reader)
    rows_sum = sum((_money(row, columns, reader) for row in data), Decimal(0))
    if abs(total - rows_sum) > CENT:
        warnings.append(
            f"the total row (row {final.line}) says {total} but the rows add up to "
            f"{rows_sum}; the rows were used"
        )
    return warnings


def _money(row: _Row, columns: _Columns, reader: _Reader) -> Decimal:
    return sum((part.amount for part in _parts(row, columns, reader)), Decimal(0))


def _document_currency(
    header: _Header, rows: Sequence[_Row], columns: _Columns, reader: _Reader
) -> tuple[str, list[str]]:
    """The one currency the export names (column, cost header, cost cells), or EUR."""
    found = set(reader.currencies)
    for index in columns.costs.values():
        try:
            code = parse_currency(header.cells[index])
        except ValueError:
            raise _Problem(f"the header {header.cells[index]!r} names several currencies") from None
        found.update([code] if code else [])
    for row in rows:
        if value := row.cell(columns.currency):
            found.add(_currency(value, row, "currency"))
    if len(found) > 1:
        raise _Problem(f"the export mixes currencies ({', '.join(sorted(found))})")
    if not found:
        # Without a cost column no amount depends on the currency: nothing to warn about.
        warning = f"no currency in the export; assumed {DEFAULT_CURRENCY}"
        return DEFAULT_CURRENCY, [warning] if columns.costs else []
    return found.pop(), []


def _model_warnings(matches: Iterable[ModelMatch]) -> list[str]:
    unknown = dict.fromkeys(match.model for match in matches if not match.known)
    return [f'unknown model id "{model}"' for model in unknown]


def _column_warnings(header: _Header, columns: _Columns) -> list[str]:
    if not columns.costs:
        return ["no cost column: tokens only"]
    if None in columns.costs and len(columns.costs) > 1 and columns.usage is None:
        unused = header.cells[columns.costs[None]]
        return [f"the column {unused!r} was not used: the per-usage costs give the spend"]
    return []
