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


def spend_report(session: Session, account_name: str) -> dict[str, Any]:
    account = _account(session, account_name)
    by_month = _documents_by_month(session, account.id)
    months = []
    totals: dict[str, Decimal] = {}
    for month in sorted(by_month):
        entry = _month_entry(month, by_month[month])
        totals[month] = Decimal(entry["total_usd"])
        months.append(entry)
    for entry in months:
        _compare_with_previous(entry, totals)
    return {"account": account.name, "currency": "USD", "months": months}


def month_summaries(
    session: Session, account_name: str, months: Collection[str]
) -> list[dict[str, Any]]:
    """The report's month entries without models and sources, for `months` ("YYYY-MM"):
    what the confirmation reply says. Reads one row per document of those months and the
    months before them (documents.usd_total), never their lines, however many there are."""
    account = _account(session, account_name)
    wanted = set(months) | {_previous_month(m) for m in months}
    rows = session.execute(
        select(Document.month, Document.kind, Document.usd_total)
        .join(Import, Import.id == Document.import_id)
        .where(
            Document.account_id == account.id,
            Document.kind != "credit_purchase",
            Document.month.in_(sorted(wanted)),
            Import.status.in_(COUNTED_STATUSES),
        )
    ).all()
    invoiced: dict[str, Decimal] = defaultdict(Decimal)
    exported: dict[str, Decimal] = defaultdict(Decimal)
    for month, kind, usd_total in rows:
        assert month is not None  # selected by month
        (invoiced if kind == "invoice" else exported)[month] += usd_total or Decimal(0)
    # an invoice's month ignores the usage exports (as _month_entry counts it)
    totals = {m: invoiced[m] if m in invoiced else exported[m] for m in {*invoiced, *exported}}
    entries = []
    for month in sorted(months):
        entry = {
            "month": month,
            "total_usd": _usd(totals.get(month, Decimal(0))),
            "previous_month": None,
            "change_usd": None,
            "change_pct": None,
        }
        _compare_with_previous(entry, totals)
        entries.append(entry)
    return entries


def _account(session: Session, account_name: str) -> Account:
    account = session.scalar(select(Account).where(Account.name == account_name))
    if account is None:
        raise UnknownAccount(account_name)
    return account


def _documents_by_month(session: Session, account_id: int) -> dict[str, list[Document]]:
    documents = session.scalars(
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
    ).all()
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
