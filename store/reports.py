"""Spend per month and model in USD for one account: the report JSON of CONTRACT.md.

The dashboard calls `spend_report` too, so the rule that counts nothing twice lives here
alone: a month covered by an invoice takes its spend from the invoice(s) only; usage-export
rows count only for months no invoice covers; credit purchases are never spend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from store.models import Account, Document, Import

# Rejected and duplicate imports store no documents, nor does a worker's hold. The one held
# import with documents is an imported one a replay put before a person: what it counted
# stays counted, unchanged, until the person releases (replaced) or rejects (gone) it.
COUNTED_STATUSES = ("imported", "held")
CENT = Decimal("0.01")
TENTH = Decimal("0.1")


class UnknownAccount(LookupError):
    pass


@dataclass
class _ModelSpend:
    amount_usd: Decimal = Decimal(0)
    tokens: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def spend_report(
    session: Session, account_name: str, only: Collection[str] | None = None
) -> dict[str, Any]:
    """Every month of the account, or `only` those months ("YYYY-MM"; the confirmation
    reply's), which reads just them and the months before them, however long the history."""
    account = session.scalar(select(Account).where(Account.name == account_name))
    if account is None:
        raise UnknownAccount(account_name)
    wanted = None if only is None else set(only) | {_previous_month(m) for m in only}
    by_month = _documents_by_month(session, account.id, wanted)
    months = []
    totals: dict[str, Decimal] = {}
    for month in sorted(by_month):
        entry = _month_entry(month, by_month[month])
        totals[month] = Decimal(entry["total_usd"])
        months.append(entry)
    for entry in months:
        _compare_with_previous(entry, totals)
    if only is not None:
        months = [entry for entry in months if entry["month"] in only]
    return {"account": account.name, "currency": "USD", "months": months}


def _documents_by_month(
    session: Session, account_id: int, months: set[str] | None
) -> dict[str, list[Document]]:
    query = (
        select(Document)
        .join(Import, Import.id == Document.import_id)
        .where(
            Document.account_id == account_id,
            Document.kind != "credit_purchase",
            Document.month.is_not(None),
            Import.status.in_(COUNTED_STATUSES),
        )
        .options(selectinload(Document.lines))
        .order_by(Document.period_start, Document.id)
    )
    if months is not None:
        query = query.where(Document.month.in_(sorted(months)))
    documents = session.scalars(query).all()
    grouped: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        assert document.month is not None
        grouped[document.month].append(document)
    return grouped


def _month_entry(month: str, documents: list[Document]) -> dict[str, Any]:
    invoices = [d for d in documents if d.kind == "invoice"]
    counted = invoices or documents  # an invoice's month ignores the usage exports
    spend: dict[tuple[str, str], _ModelSpend] = defaultdict(_ModelSpend)
    for document in counted:
        for line in document.lines:
            model = spend[(line.model, line.category)]
            model.amount_usd += line.amount_usd or Decimal(0)
            if line.usage and line.quantity is not None and line.unit in (None, "tokens"):
                model.tokens[line.usage] += int(line.quantity)
    models = [
        {
            "model": name,
            "category": category,
            "amount_usd": _usd(m.amount_usd),
            "input_tokens": m.tokens["input"],
            "output_tokens": m.tokens["output"],
            "cached_tokens": m.tokens["cached"],
        }
        for (name, category), m in sorted(spend.items(), key=lambda i: -i[1].amount_usd)
    ]
    total = sum((m.amount_usd for m in spend.values()), Decimal(0))
    return {
        "month": month,
        "total_usd": _usd(total),
        "models": models,
        "previous_month": None,
        "change_usd": None,
        "change_pct": None,
        "sources": [_source(d) for d in counted],
    }


def _compare_with_previous(entry: dict[str, Any], totals: dict[str, Decimal]) -> None:
    previous = _previous_month(entry["month"])
    if previous not in totals:
        return
    before, now = totals[previous], Decimal(entry["total_usd"])
    entry["previous_month"] = previous
    entry["change_usd"] = _usd(now - before)
    entry["change_pct"] = (
        format(((now - before) / before * 100).quantize(TENTH, ROUND_HALF_UP), "f")
        if before
        else None
    )


def _previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def _source(document: Document) -> str:
    if document.kind == "invoice":
        return f"invoice {document.number or document.file_name}"
    return f"usage export {document.file_name}"


def _usd(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_UP), "f")
