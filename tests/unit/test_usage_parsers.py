"""Usage exports (CSV and console JSON) parse into the documented JSON, or are refused clearly."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.usage_exports import (
    UsageFixture,
    csv_limit_refusals,
    golden,
    json_size_refusal,
    refused,
)
from parsers.base import Document, Parser, Refused
from parsers.mistral_usage_csv import PARSER as CSV_PARSER
from parsers.mistral_usage_json import PARSER as JSON_PARSER
from parsers.registry import parse_file
from parsers.source import FileSource

PARSERS: list[Parser] = [CSV_PARSER, JSON_PARSER]
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "csv"
FX_FIELDS = ("fx_rate", "fx_date")


# --- helpers


def parse(name: str, data: bytes) -> list[Document]:
    return parse_file(name, data, parsers=PARSERS)


def without_fx(document: dict[str, Any]) -> dict[str, Any]:
    """The parse JSON less what the registry's conversion fills in later."""
    kept = {key: value for key, value in document.items() if key not in FX_FIELDS}
    kept["lines"] = [
        {key: value for key, value in line.items() if key != "amount_usd"} for line in kept["lines"]
    ]
    return kept


def refusal_of(fixture: UsageFixture) -> str:
    with pytest.raises(Refused) as refused_:
        parse(fixture.name, fixture.data)
    assert refused_.value.file == fixture.name
    return refused_.value.reason


# --- golden files


@pytest.mark.parametrize("name", sorted(golden()))
def test_golden_export_gives_its_expected_parse_json(name: str) -> None:
    fixture = golden()[name]
    documents = parse(fixture.name, fixture.data)
    assert {"documents": [without_fx(d.to_json()) for d in documents]} == fixture.expected


@pytest.mark.parametrize("name", sorted(refused()))
def test_unreadable_export_is_refused_with_its_reason(name: str) -> None:
    fixture = refused()[name]
    assert refusal_of(fixture) == fixture.refusal


@pytest.mark.parametrize("fixture", csv_limit_refusals(), ids=lambda f: f.name)
def test_csv_beyond_the_reliability_limits_is_refused(fixture: UsageFixture) -> None:
    assert refusal_of(fixture) == fixture.refusal


def test_json_beyond_20_mb_is_refused_unread() -> None:
    fixture = json_size_refusal()
    assert refusal_of(fixture) == fixture.refusal


def test_each_parser_scores_only_its_own_format() -> None:
    en = golden()["csv_en_comma"]
    tokens_only = golden()["csv_tokens_only"]
    console = golden()["json_console_october"]
    assert CSV_PARSER.score(FileSource(en.name, en.data)) == 0.9
    assert CSV_PARSER.score(FileSource(tokens_only.name, tokens_only.data)) == 0.5
    assert CSV_PARSER.score(FileSource(console.name, console.data)) == 0.0
    assert JSON_PARSER.score(FileSource(console.name, console.data)) == 0.95
    assert JSON_PARSER.score(FileSource(en.name, en.data)) == 0.0


def test_a_title_and_an_excel_separator_line_may_come_before_the_header() -> None:
    data = b"sep=;\r\nMistral usage, October\r\nDate;Model;Cost (EUR)\r\n"
    data += b"2026-10-01;codestral-2508;1,50\r\n"
    [document] = parse("excel.csv", data)
    assert [(line.model, line.amount) for line in document.lines] == [
        ("Codestral", Decimal("1.50"))
    ]


def test_numeric_dates_are_refused_when_nothing_tells_their_order() -> None:
    data = b"Date,Model,Cost (EUR)\r\n01/02/2026,codestral-2508,1.50\r\n"
    with pytest.raises(Refused, match="row 2: date '01/02/2026' is ambiguous"):
        parse("us_or_uk.csv", data)


# --- CSV dialects (property tests)

MODELS = {
    "mistral-large-2411": "Mistral Large",
    "codestral-2508": "Codestral",
    "mistral-small-2506": "Mistral Small",
}
HEADERS = {
    "en": [
        "Date",
        "Workspace",
        "Model",
        "Input tokens",
        "Output tokens",
        "Cached tokens",
        "Cost (EUR)",
    ],
    "fr": [
        "Jour",
        "Espace de travail",
        "Modèle",
        "Tokens d'entrée",
        "Tokens de sortie",
        "Tokens en cache",
        "Coût (€)",
    ],
}
TOTAL_LABELS = ["Total", "TOTAL", "Sum", "Somme"]


@dataclass(frozen=True)
class UsageRow:
    """One generated row: a day of October, a model, its tokens and its cost."""

    day: int
    model: str
    input: int
    output: int
    cached: int
    cost: Decimal  # four decimals


@dataclass(frozen=True)
class Dialect:
    """How one generated file is written."""

    delimiter: str
    decimal_comma: bool
    grouped: bool  # thousands separators in the numbers
    bom: bool
    language: str
    encoding: str
    line_end: str
    total_label: str | None  # a total row at the end, labelled so


usage_rows = st.builds(
    UsageRow,
    day=st.integers(1, 28),
    model=st.sampled_from(sorted(MODELS)),
    input=st.integers(0, 5 * 10**9),
    output=st.integers(0, 10**9),
    cached=st.integers(0, 10**8),
    cost=st.integers(0, 10**8).map(lambda n: Decimal(n).scaleb(-4)),
)
dialects = st.builds(
    Dialect,
    delimiter=st.sampled_from([",", ";", "\t"]),
    decimal_comma=st.booleans(),
    grouped=st.booleans(),
    bom=st.booleans(),
    language=st.sampled_from(["en", "fr"]),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
    line_end=st.sampled_from(["\n", "\r\n"]),
    total_label=st.none() | st.sampled_from(TOTAL_LABELS),
)


def written(value: Decimal | int, dialect: Dialect) -> str:
    """A number as a spreadsheet in that locale writes it."""
    text = f"{value:,.4f}" if isinstance(value, Decimal) else f"{value:,}"
    if not dialect.grouped:
        text = text.replace(",", "")
    if dialect.decimal_comma:  # 1,234.5 -> 1 234,5 (NBSP: it exists in Windows-1252)
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def written_day(day: int, dialect: Dialect) -> str:
    return f"{day:02d}/10/2026" if dialect.language == "fr" else f"2026-10-{day:02d}"


def render(rows: list[UsageRow], dialect: Dialect) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=dialect.delimiter, lineterminator=dialect.line_end)
    writer.writerow(HEADERS[dialect.language])
    for row in rows:
        numbers: list[Decimal | int] = [row.input, row.output, row.cached, row.cost]
        cells = [written_day(row.day, dialect), "default", row.model]
        writer.writerow(cells + [written(n, dialect) for n in numbers])
    if dialect.total_label:
        sums = [sum(getattr(r, f) for r in rows) for f in ("input", "output", "cached", "cost")]
        writer.writerow([dialect.total_label, "", ""] + [written(n, dialect) for n in sums])
    data = buffer.getvalue().encode(dialect.encoding)
    return codecs.BOM_UTF8 + data if dialect.bom and dialect.encoding == "utf-8" else data


def parsed_totals(document: Document) -> dict[str, dict[str, Decimal]]:
    totals: dict[str, dict[str, Decimal]] = {}
    for line in document.lines:
        assert line.model_id is not None
        per_model = totals.setdefault(line.model_id, {})
        if line.usage is None:
            per_model["cost"] = per_model.get("cost", Decimal(0)) + line.amount
        else:
            assert line.amount == 0  # tokens are never given part of the money
            per_model[line.usage] = per_model.get(line.usage, Decimal(0)) + (line.quantity or 0)
    return totals


def generated_totals(rows: list[UsageRow]) -> dict[str, dict[str, Decimal]]:
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        per_model = totals.setdefault(row.model, {})
        for usage in ("input", "output", "cached", "cost"):
            per_model[usage] = per_model.get(usage, Decimal(0)) + getattr(row, usage)
    return totals


def nonzero(totals: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """Totals less zeros: a line that would carry nothing is left out."""
    kept = {model: {k: v for k, v in per_model.items() if v} for model, per_model in totals.items()}
    return {model: per_model for model, per_model in kept.items() if per_model}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(usage_rows, min_size=1, max_size=12), dialect=dialects, data=st.data())
def test_any_dialect_gives_the_generated_totals_per_model(
    rows: list[UsageRow], dialect: Dialect, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(rows))
    [document] = parse("usage.csv", render(shuffled, dialect))
    assert nonzero(parsed_totals(document)) == nonzero(generated_totals(rows))
    assert document.currency == "EUR"
    assert document.period_start == date(2026, 10, min(r.day for r in rows))
    assert document.period_end == date(2026, 10, max(r.day for r in rows))
    assert document.total == sum((r.cost for r in rows), Decimal(0))
    assert document.warnings == []
    assert {line.model for line in document.lines} <= set(MODELS.values())


# --- real-world CSV: parsed or refused, never a crash


def corpus_files() -> list[Any]:
    if not CORPUS.is_dir():
        reason = f"the shared corpus is absent ({CORPUS})"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="corpus-absent")]
    return [
        pytest.param(path, id=str(path.relative_to(CORPUS)))
        for path in sorted(CORPUS.rglob("*.csv"))
    ]


@pytest.mark.parametrize("path", corpus_files())
def test_real_world_csv_is_parsed_or_refused_never_crashes(path: Path) -> None:
    try:
        documents = parse(path.name, path.read_bytes())
    except Refused as refusal:
        assert refusal.reason.strip()
        return
    for document in documents:
        document.to_json()  # every value serialises
