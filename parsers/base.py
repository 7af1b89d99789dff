"""Document and line types every parser produces, and the refusal every parser may raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

Kind = Literal["invoice", "usage_export", "credit_purchase"]
Usage = Literal["input", "output", "cached"]

CATEGORIES = frozenset(
    {
        "completion",
        "embeddings",
        "moderation",
        "ocr",
        "audio",
        "fine_tuning",
        "connectors",
        "libraries",
        "subscription",
        "credits",
        "other",
    }
)


@dataclass
class Line:
    """One billed line, in the document's currency as printed."""

    description: str
    model: str  # canonical name (MISTRAL_FORMATS.md), the id when unknown, or a product
    model_id: str | None  # the id as billed; None where only an alias is named
    category: str
    usage: Usage | None
    quantity: Decimal | None
    unit: str | None  # tokens, pages, seconds, seats...
    amount: Decimal
    unit_price: Decimal | None = None  # kept for the units x price check; not in the JSON
    amount_usd: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "model": self.model,
            "model_id": self.model_id,
            "category": self.category,
            "usage": self.usage,
            "quantity": _dec(self.quantity),
            "unit": self.unit,
            "amount": _dec(self.amount),
            "amount_usd": _dec(self.amount_usd),
        }


@dataclass
class Document:
    """One invoice, usage export or credit purchase, as the parse JSON of CONTRACT.md."""

    file: str
    kind: Kind
    currency: str
    number: str | None = None
    issue_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    subtotal: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None
    prepaid_credits: Decimal = Decimal(0)  # deducted on the invoice; changes total only
    lines: list[Line] = field(default_factory=list)
    fx_rate: Decimal | None = None
    fx_date: date | None = None
    warnings: list[str] = field(default_factory=list)
    provider: str = "mistral"
    issuer: str | None = None  # the issuer's name, company or VAT number as printed
    pages: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "provider": self.provider,
            "kind": self.kind,
            "number": self.number,
            "issue_date": _day(self.issue_date),
            "period_start": _day(self.period_start),
            "period_end": _day(self.period_end),
            "currency": self.currency,
            "subtotal": _dec(self.subtotal),
            "tax": _dec(self.tax),
            "total": _dec(self.total),
            "fx_rate": _dec(self.fx_rate),
            "fx_date": _day(self.fx_date),
            "lines": [line.to_json() for line in self.lines],
            "warnings": list(self.warnings),
        }


class Refused(Exception):
    """This file cannot be imported. `reason` is said to the customer, so it names the file
    and says what is wrong in plain words."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class Source(Protocol):
    """What a parser is handed: the file's name and bytes, and views of them made once."""

    name: str
    data: bytes

    @property
    def format(self) -> str:
        """ "pdf", "json", "csv" (any delimited text) or "unknown", judged by content."""
        ...

    @property
    def text(self) -> str:
        """The whole text: every PDF page's text (NFC, pages joined by form feeds), or the
        decoded text of a text file."""
        ...

    @property
    def page_texts(self) -> list[str]:
        """A PDF's text, one string a page (NFC); empty for other formats."""
        ...


class Parser(Protocol):
    """One document format. A new format is one new module with one of these."""

    name: str

    def score(self, source: Source) -> float:
        """How sure this parser is that the file is its format: 0 declines, 1 is certain."""
        ...

    def parse(self, source: Source) -> list[Document]:
        """The documents in the file; raises Refused with a specific reason."""
        ...


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
