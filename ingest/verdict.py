"""The last step: what the documents of one message come to, written in one transaction.

Nothing is counted twice: a document seen before is a duplicate (said in the reply); the same
invoice number with other content is held for a person; a document whose checks failed or
whose exchange rate is not known yet holds the whole message, so no spend is counted before
a person (or the rate data) says it is right. The unique indexes on documents make a race
between two messages end in a retry, never in a double count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from ingest.pipeline import ImportContext, Outcome
from ingest.replying import Replies
from ingest.sla import sla_due
from ingest.steps import Facts, FileRead, facts_of
from ingest.threads import forward_to_support
from parsers.base import Document
from store.db import Database
from store.documents import (
    clear_attachments,
    documents_of_import,
    drop_documents,
    find_known,
    replace_document,
    store_attachment,
    store_document,
)
from store.reports import month_summaries
from store.states import Status


@dataclass
class Plan:
    new: list[tuple[FileRead, Document]] = field(default_factory=list)
    duplicates: list[tuple[FileRead, Document, int]] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)
    # released by a person: these new versions replace the stored documents they name
    replaces: dict[int, int] = field(default_factory=dict)  # id(document) -> stored id
    # released by a person: the import's own stored documents its current reading lacks
    stale: list[int] = field(default_factory=list)

    def verdict(self, facts: Facts) -> tuple[Status, str]:
        if self.holds:
            return Status.HELD, "; ".join(self.holds)
        if self.new:
            counted = ", ".join(_label(d) for _, d in self.new)
            return Status.IMPORTED, f"imported {counted}"
        if self.duplicates:
            return Status.DUPLICATE, "every document was imported before"
        return Status.REJECTED, _nothing_to_import(facts)


class Decide:
    name = "decide"

    def __init__(self, db: Database, replies: Replies, calendar: str) -> None:
        self._db, self._replies, self._calendar = db, replies, calendar

    def __call__(self, context: ImportContext) -> Outcome:
        facts = facts_of(context)
        assert facts.account_id is not None
        with self._db.read() as session:
            plan = _plan(session, facts, context.import_id, released=context.released)
        status, reason = plan.verdict(facts)

        def store(session: Session) -> None:
            _store(session, context.import_id, facts, plan, status)

        def reply_values(session: Session) -> dict[str, Any]:
            return self._reply_values(session, context, facts, plan, status, reason)

        effects = self._replies.effects(context, facts, status, status.value, reply_values, store)
        if facts.thread_of is not None:  # an answer on a thread: support hears of it too
            effects = forward_to_support(self._replies.settings, context, then=effects)
        return Outcome(status, reason, effects)

    def _reply_values(
        self,
        session: Session,
        context: ImportContext,
        facts: Facts,
        plan: Plan,
        status: Status,
        reason: str,
    ) -> dict[str, Any]:
        imported = plan.new if status is Status.IMPORTED else []
        months = {d.period_start.strftime("%Y-%m") for _, d in imported if d.period_start}
        summaries = month_summaries(session, facts.account_name or "", months) if months else []
        return {
            "status": status.value,
            "received_at": context.received_at,
            "reason": None if status is Status.IMPORTED else reason,
            "review_by": sla_due(context.received_at, self._calendar)
            if status is Status.HELD and context.received_at
            else None,
            "documents": [_document_values(d) for _, d in imported],
            "duplicates": [_duplicate_values(d, first) for _, d, first in plan.duplicates],
            "ignored": _ignored(facts),
            "months": [_month_values(m) for m in summaries],
        }


def _plan(session: Session, facts: Facts, import_id: int, released: bool = False) -> Plan:
    """What each document is. After a person's release, what held the message is accepted:
    warnings stand, and a changed invoice replaces the one stored under its number."""
    plan = Plan()
    assert facts.account_id is not None
    seen_numbers: dict[tuple[str, str], str] = {}
    for read in facts.files:
        for document in read.documents:
            known = find_known(session, facts.account_id, document, read.sha256)
            # An imported message a replay held, now released: the current reading replaces
            # what it stored, even where the content is the same (the USD may not be).
            own = known is not None and known.import_id == import_id
            if known is not None and known.same_content and not (own and released):
                plan.duplicates.append((read, document, known.import_id))
                continue
            if known is not None and released:
                plan.replaces[id(document)] = known.document_id
            elif known is not None:
                plan.holds.append(
                    f"{_label(document)} was imported before (import "
                    f"{known.import_id}) with different content"
                )
                continue
            key = (document.kind, document.number or read.sha256)
            if key in seen_numbers and document.number:
                plan.holds.append(f"{_label(document)} appears twice with different content")
                continue
            seen_numbers[key] = read.name
            if document.fx_rate is None:  # not even a release imports spend without USD
                plan.holds.append(
                    f"{read.name}: waiting for the ECB exchange rate of "
                    f"{document.currency} for its date"
                )
            elif not released:
                plan.holds.extend(f"{read.name}: {w}" for w in document.warnings)
            plan.new.append((read, document))
    if released:
        replaced = set(plan.replaces.values())
        plan.stale = [d.id for d in documents_of_import(session, import_id) if d.id not in replaced]
    return plan


def _store(session: Session, import_id: int, facts: Facts, plan: Plan, status: Status) -> None:
    assert facts.account_id is not None and facts.extracted is not None
    clear_attachments(session, import_id)  # a re-run (after a release) lists them anew
    attachment_ids: dict[str, int] = {}
    for read in facts.files:
        outcome = _file_outcome(read, plan, status)
        attachment_ids[read.sha256] = store_attachment(
            session,
            import_id,
            name=read.name,
            path=read.path,
            content_type="",
            size=read.size,
            sha256=read.sha256,
            outcome=outcome,
            reason=read.refusal,
        )
    for skipped in facts.extracted.skipped:
        store_attachment(
            session,
            import_id,
            name=skipped.name,
            path=skipped.path,
            content_type=skipped.content_type[:200],
            size=0,
            sha256=None,
            outcome="skipped",
            reason=skipped.reason,
        )
    if status is not Status.HELD:  # held again: what it counted stays until a person decides
        drop_documents(session, plan.stale)
    if status is not Status.IMPORTED:
        return  # held, duplicate or rejected: no spend is stored
    for read, document in plan.new:
        if id(document) in plan.replaces:
            replace_document(session, plan.replaces[id(document)])
        store_document(
            session, import_id, facts.account_id, attachment_ids[read.sha256], document, read.sha256
        )


def _file_outcome(read: FileRead, plan: Plan, status: Status) -> str:
    if read.refusal is not None or not read.documents:
        return "refused"
    if any(r is read for r, _ in plan.new):
        return "imported" if status is Status.IMPORTED else "held"
    return "duplicate"


def _label(document: Document) -> str:
    kind = document.kind.replace("_", " ")
    return f"{kind} {document.number}" if document.number else f"{kind} {document.file}"


def _nothing_to_import(facts: Facts) -> str:
    refusals = [f"{r.name}: {r.refusal}" for r in facts.files if r.refusal]
    if refusals:
        return "no document could be imported: " + "; ".join(refusals)
    return "the message has no Mistral invoice or usage export attached"


def _document_values(document: Document) -> dict[str, Any]:
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for line in document.lines:
        entry = models.setdefault(
            (line.model, line.category),
            {
                "model": line.model,
                "category": line.category,
                "amount": Decimal(0),
                "amount_usd": Decimal(0),
                "input_tokens": 0,
                "output_tokens": 0,
                "cached_tokens": 0,
            },
        )
        entry["amount"] += line.amount
        entry["amount_usd"] += line.amount_usd or Decimal(0)
        if line.usage and line.quantity is not None and line.unit in (None, "tokens"):
            entry[f"{line.usage}_tokens"] += int(line.quantity)
    total_usd = sum((m["amount_usd"] for m in models.values()), Decimal(0))
    return {
        "file": document.file,
        "kind": document.kind,
        "number": document.number,
        "period_start": document.period_start,
        "period_end": document.period_end,
        "currency": document.currency,
        "total": document.total,
        "total_usd": total_usd if document.fx_rate is not None else None,
        "fx_rate": document.fx_rate,
        "fx_date": document.fx_date,
        "models": list(models.values()),
        "warnings": list(document.warnings),
    }


def _duplicate_values(document: Document, first_import_id: int) -> dict[str, Any]:
    return {
        "file": document.file,
        "kind": document.kind,
        "number": document.number,
        "period_start": document.period_start,
        "period_end": document.period_end,
        "first_import_id": first_import_id,
    }


def _ignored(facts: Facts) -> list[dict[str, Any]]:
    assert facts.extracted is not None
    ignored = [
        {"file": r.name, "reason": r.refusal, "advice": None} for r in facts.files if r.refusal
    ]
    ignored += [
        {"file": s.name, "reason": s.reason, "advice": None} for s in facts.extracted.skipped
    ]
    return ignored


def _month_values(month: dict[str, Any]) -> dict[str, Any]:
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return {
        "month": month["month"],
        "total_usd": Decimal(month["total_usd"]),
        "previous_month": month["previous_month"],
        "change_usd": dec(month["change_usd"]),
        "change_pct": dec(month["change_pct"]),
    }
