"""Mistral's PDF invoices give the golden parse JSON with either reader, or a clear refusal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from fixtures import make_documents as docs
from parsers.base import Document, Parser, Refused, Source
from parsers.lago_tables import CamelotRows, Reading, TextRows
from parsers.mistral_lago import PARSER as LAGO
from parsers.mistral_lago import LagoParser
from parsers.mistral_stripe import PARSER as STRIPE
from parsers.registry import parse_file, registered_parsers
from parsers.source import FileSource

LAGO_KEYS = [key for key, spec in docs.SPECS.items() if spec.layout.startswith("lago")]
STRIPE_KEYS = [key for key, spec in docs.SPECS.items() if spec.layout == "stripe"]
REFUSALS = {
    "encrypted": "password",
    "scanned": "no text layer",
    "truncated": "damaged",
    "empty": "empty",
    "openai": "an OpenAI invoice, not a Mistral one",
}


@pytest.fixture(scope="module", autouse=True)
def dejavu_fonts() -> None:
    """The generator draws with DejaVu Sans (Debian's fonts-dejavu-core)."""
    try:
        docs.font_paths()
    except docs.FontMissing as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI is set, so the fixture tests may not skip: {exc}")
        pytest.skip(str(exc))


def every_parser() -> Sequence[Parser] | None:
    """The registry's own parsers (None); ours alone while a sibling format is not importable."""
    try:
        registered_parsers()
    except (ImportError, AttributeError):
        return [LAGO, STRIPE]
    return None


def parse_json(spec: docs.Spec, parsers: Sequence[Parser] | None = None) -> dict[str, Any]:
    documents = parse_file(spec.file, docs.render(spec), parsers or every_parser())
    return docs.without_fx({"documents": [document.to_json() for document in documents]})


def only(spec: docs.Spec) -> Document:
    [document] = parse_file(spec.file, docs.render(spec), every_parser())
    return document


# --- the golden documents


@pytest.mark.parametrize("key", list(docs.SPECS))
def test_a_golden_document_parses_to_its_expected_json(key: str) -> None:
    assert parse_json(docs.SPECS[key]) == docs.expected(docs.SPECS[key])


@pytest.mark.parametrize("key", LAGO_KEYS)
def test_the_camelot_reader_alone_reads_every_golden_lago_invoice(key: str) -> None:
    camelot_only = LagoParser(readers=[CamelotRows()])
    assert parse_json(docs.SPECS[key], [camelot_only, STRIPE]) == docs.expected(docs.SPECS[key])


class Unreachable:
    """A reader that fails the test if the parser ever falls back to it."""

    name = "unreachable"

    def read(self, source: Source) -> Reading:
        raise AssertionError(f"the fallback was used on {source.name}")


@pytest.mark.parametrize("key", LAGO_KEYS)
def test_the_page_text_reads_every_golden_lago_invoice_without_the_fallback(key: str) -> None:
    text_first = LagoParser(readers=[TextRows(), Unreachable()])
    assert parse_json(docs.SPECS[key], [text_first, STRIPE]) == docs.expected(docs.SPECS[key])


class Blind:
    """A primary reader that finds a row-like line it cannot split, and nothing else."""

    name = "blind"

    def read(self, source: Source) -> Reading:
        return Reading(self.name, unread=["Tokens • mistral-large-2411 • input 48,211,930 …"])


class Misreading:
    """A primary reader that reads every row but misreads the first digit of one amount."""

    name = "misreading"

    def read(self, source: Source) -> Reading:
        reading = TextRows().read(source)
        first = reading.rows[0]
        at = min(i for i, char in enumerate(first.amount) if char.isdigit())
        digit = str((int(first.amount[at]) + 1) % 10)
        reading.rows[0] = replace(first, amount=first.amount[:at] + digit + first.amount[at + 1 :])
        return reading


@pytest.mark.parametrize("primary", [Blind(), Misreading()], ids=lambda r: r.name)
@pytest.mark.parametrize("key", ["lago_en_eur", "lago_fr_eur", "lago_en_eur_3_pages"])
def test_camelot_takes_over_where_the_page_text_does_not_reconcile(key: str, primary: Any) -> None:
    parser = LagoParser(readers=[primary, CamelotRows()])
    assert parse_json(docs.SPECS[key], [parser, STRIPE]) == docs.expected(docs.SPECS[key])


# --- what each parser claims


@pytest.mark.parametrize("key", LAGO_KEYS + STRIPE_KEYS)
def test_each_golden_pdf_is_claimed_by_its_own_parser_alone(key: str) -> None:
    source = FileSource(key, docs.render(docs.SPECS[key]))
    lago, stripe = LAGO.score(source), STRIPE.score(source)
    assert (lago, stripe) == ((0.95, 0.0) if key in LAGO_KEYS else (0.0, 0.9))


def test_an_openai_invoice_in_stripe_s_layout_is_claimed_by_neither() -> None:
    source = FileSource("openai.pdf", docs.foreign_provider_invoice())
    assert (LAGO.score(source), STRIPE.score(source)) == (0.0, 0.0)


def test_text_files_are_not_claimed() -> None:
    source = FileSource("usage.csv", b"date,model,cost\n2026-10-01,mistral-large-2411,1.00\n")
    assert (LAGO.score(source), STRIPE.score(source)) == (0.0, 0.0)


def test_a_lago_invoice_from_an_unknown_issuer_is_read_with_an_issuer_warning() -> None:
    spec = replace(
        docs.SPECS["lago_en_eur"],
        issuer=("Acme Billing SAS", "1 rue de Rivoli", "75001 Paris, France"),
        issuer_tax_id=None,
    )
    assert LAGO.score(FileSource(spec.file, docs.render(spec))) == 0.6
    assert only(spec).warnings == ["the issuer is not Mistral AI"]


# --- refusals


@pytest.mark.parametrize("name", list(docs.BROKEN))
def test_a_broken_file_is_refused_with_its_own_reason(name: str) -> None:
    with pytest.raises(Refused) as refusal:
        parse_file(f"{name}.pdf", docs.BROKEN[name](), every_parser())
    assert refusal.value.file == f"{name}.pdf"
    assert REFUSALS[name] in refusal.value.reason


# --- misprints are said


@dataclass(frozen=True)
class MisprintedRow(docs.Row):
    """A row whose amount is printed as `printed`, whatever units x price say."""

    printed: Decimal = Decimal(0)

    @property
    def amount(self) -> Decimal:
        return self.printed


@dataclass(frozen=True)
class MisprintedSubtotal(docs.Spec):
    """An invoice whose subtotal (and so tax and total) is printed `off` from its lines."""

    off: Decimal = Decimal(0)

    @property
    def subtotal(self) -> Decimal:
        return super().subtotal + self.off


@pytest.mark.parametrize("key", ["lago_en_eur", "lago_fr_eur_prepaid", "lago_en_eur_3_pages"])
def test_a_row_amount_printed_wrong_is_a_warning(key: str) -> None:
    golden = docs.SPECS[key]
    first = golden.rows[0]
    wrong = MisprintedRow(**vars(first), printed=first.amount + Decimal("10.00"))
    spec = replace(golden, rows=(wrong, *golden.rows[1:]))
    document = only(spec)
    assert document.lines[0].amount == wrong.amount  # the amount as printed, not recomputed
    [warning] = document.warnings
    assert warning.startswith(f"line {first.description('lago_usage')!r}: ")
    assert warning.endswith(f"but the amount printed is {wrong.amount}")


def test_a_subtotal_printed_wrong_is_a_warning() -> None:
    golden = docs.SPECS["lago_fr_eur"]
    spec = MisprintedSubtotal(**vars(golden), off=Decimal("1.00"))
    document = only(spec)
    assert document.subtotal == golden.subtotal + 1
    assert document.warnings == [
        f"the lines add up to {golden.subtotal}, but the subtotal printed is {document.subtotal}"
    ]


def test_an_unknown_model_id_is_kept_with_a_warning() -> None:
    golden = docs.SPECS["lago_en_eur"]
    row = replace(golden.rows[0], model_id="mistral-colossal-2701")
    document = only(replace(golden, rows=(row, *golden.rows[1:])))
    line = document.lines[0]
    assert (line.model, line.model_id, line.category) == (
        "mistral-colossal-2701",
        "mistral-colossal-2701",
        "other",
    )
    assert document.warnings == ["unknown model id 'mistral-colossal-2701': kept as its own model"]


def test_the_page_count_and_issuer_are_kept_for_the_checks() -> None:
    document = only(docs.SPECS["lago_en_eur_3_pages"])
    assert document.pages == 3
    assert document.issuer == "Mistral AI SAS, RCS Paris 952 418 325, Tax ID FR95952418325"
    stripe = only(docs.SPECS["stripe_le_chat_team"])
    assert stripe.issuer == "MistralAI, RCSParis952418325, FRVATFR95952418325"
