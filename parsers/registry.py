"""Which parser reads a file: every registered format scores it and the best one wins."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import date
from functools import cache

from parsers.base import Document, Parser, Refused
from parsers.checks import check_document
from parsers.foreign import foreign_provider, refusal_for
from parsers.fx import Rates, convert
from parsers.source import FileSource

# A new format is a new module here with a module-level PARSER, plus its golden fixtures.
FORMAT_MODULES: tuple[str, ...] = (
    "parsers.mistral_lago",
    "parsers.mistral_stripe",
    "parsers.mistral_usage_csv",
    "parsers.mistral_usage_json",
)


@cache
def registered_parsers() -> tuple[Parser, ...]:
    return tuple(importlib.import_module(name).PARSER for name in FORMAT_MODULES)


def parse_file(name: str, data: bytes, parsers: Sequence[Parser] | None = None) -> list[Document]:
    """The documents in one file, checked but not yet converted; raises Refused."""
    if not data.strip():
        raise Refused(name, "the file is empty")
    source = FileSource(name, data)
    if source.format == "pdf":
        source.page_texts  # noqa: B018 -- an encrypted, damaged or scanned PDF is refused here
    candidates = parsers if parsers is not None else registered_parsers()
    scored = sorted(
        ((p.score(source), i, p) for i, p in enumerate(candidates)),
        key=lambda item: (-item[0], item[1]),
    )
    if not scored or scored[0][0] <= 0:
        raise Refused(name, _why_not(source))
    documents = scored[0][2].parse(source)
    text = source.text if source.format == "pdf" else None
    for document in documents:
        document.warnings.extend(check_document(document, text))
    return documents


def convert_to_usd(documents: Sequence[Document], rates: Rates) -> None:
    """Fill fx_rate, fx_date and amount_usd per the date rule of CONTRACT.md."""
    for document in documents:
        day = _fx_day(document)
        if day is None:
            document.warnings.append("no date on the document to choose an exchange rate by")
            continue
        fx = rates.usd_rate(document.currency, day)
        if fx is None:
            document.warnings.append(
                f"no ECB {document.currency}/USD rate for {day.isoformat()} yet: USD amounts "
                "are left empty until the rates are refreshed"
            )
            continue
        document.fx_rate, document.fx_date = fx.rate, fx.ecb_day
        for line in document.lines:
            line.amount_usd = convert(line.amount, fx.rate)


def _fx_day(document: Document) -> date | None:
    # Usage exports have no issue date: the rate of the period's last day.
    if document.kind == "usage_export":
        return document.period_end
    return document.issue_date or document.period_end


def _why_not(source: FileSource) -> str:
    try:
        text = source.text
    except Refused as refusal:
        return refusal.reason
    provider = foreign_provider(text)
    if provider is not None:
        return refusal_for(provider)
    if source.format == "pdf":
        return "this PDF is not a Mistral AI invoice we recognise"
    if source.format == "csv":
        return "this table is not a Mistral usage export we recognise (no model and cost columns)"
    if source.format == "json":
        return "this JSON is not Mistral's console usage data"
    if source.format == "office":
        return "Word and Excel files are not supported; please send the PDF invoice or a CSV"
    return "this file type is not supported; please send the PDF invoice, a CSV or the JSON"
