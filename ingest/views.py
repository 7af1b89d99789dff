"""What ops see of imports: the queue and one import, as JSON-ready dicts and text tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ingest.sla import sla_due
from store.models import Attachment, Document, Import, OutboxMessage
from store.states import FINAL, Status


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def queue_entry(import_: Import, calendar: str) -> dict[str, Any]:
    """One row of the queue JSON of CONTRACT.md."""
    inbound = import_.inbound
    return {
        "id": import_.id,
        "received_at": iso(import_.received_at),
        "sender": inbound.header_from or inbound.envelope_from or None,
        "account": import_.account.name if import_.account else None,
        "subject": inbound.subject,
        "status": import_.status,
        "sla_due": iso(sla_due(import_.received_at, calendar)),
        "attempts": import_.attempts,
        "reason": import_.reason,
    }


def import_detail(
    import_: Import,
    calendar: str,
    attachments: Sequence[Attachment] = (),
    documents: Sequence[Document] = (),
    replies: Sequence[OutboxMessage] = (),
) -> dict[str, Any]:
    """`show`: the queue row plus envelope, message facts, status history, the parts found,
    the documents stored and the replies."""
    inbound = import_.inbound
    detail = queue_entry(import_, calendar)
    detail.update(
        {
            "message_id": inbound.message_id or None,
            "source": inbound.source,
            "envelope": {"mail_from": inbound.envelope_from, "rcpt_to": inbound.envelope_to},
            "size": inbound.size,
            "sha256": inbound.sha256,
            "raw_stored": inbound.raw_purged_at is None,
            "next_attempt_at": iso(import_.next_attempt_at)
            if import_.status == Status.RECEIVED.value
            else None,
            "history": [
                {
                    "at": iso(e.at),
                    "from": e.from_status,
                    "to": e.to_status,
                    "actor": e.actor,
                    "reason": e.reason,
                }
                for e in import_.events
            ],
            "attachments": [
                {
                    "name": a.name,
                    "path": a.path,
                    "size": a.size,
                    "outcome": a.outcome,
                    "reason": a.reason,
                }
                for a in attachments
            ],
            "documents": [_document(d) for d in documents],
            "replies": [
                {
                    "purpose": r.purpose,
                    "to": r.to_address,
                    "status": r.status,
                    "message_id": r.message_id or None,
                    "created_at": iso(r.created_at),
                    "sent_at": iso(r.sent_at),
                    "note": r.last_error,
                }
                for r in replies
            ],
        }
    )
    return detail


def _document(d: Document) -> dict[str, Any]:
    return {
        "file": d.file_name,
        "kind": d.kind,
        "number": d.number,
        "period_start": d.period_start.isoformat() if d.period_start else None,
        "period_end": d.period_end.isoformat() if d.period_end else None,
        "currency": d.currency,
        "total": _dec(d.total),
        "fx_rate": _dec(d.fx_rate),
        "lines": len(d.lines),
        "warnings": d.warnings,
    }


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def queue_table(entries: list[dict[str, Any]], now: datetime) -> str:
    header = (
        f"{'ID':>6}  {'STATUS':<11}  {'RECEIVED (UTC)':<16}  {'SLA LEFT':>9}  {'TRIES':>5}  "
        f"{'SENDER':<28}  SUBJECT"
    )
    lines = [header]
    for e in entries:
        received = (e["received_at"] or "")[:16].replace("T", " ")
        lines.append(
            f"{e['id']:>6}  {e['status']:<11}  {received:<16}  "
            f"{_sla_left(e, now):>9}  {e['attempts']:>5}  {(e['sender'] or '-')[:28]:<28}  "
            f"{(e['subject'] or '')[:60]}"
        )
    if not entries:
        lines.append("(the queue is empty)")
    return "\n".join(lines)


def detail_text(d: dict[str, Any]) -> str:
    lines = [
        f"import {d['id']}: {d['status']}" + (f" ({d['reason']})" if d["reason"] else ""),
        f"  received   {d['received_at']} via {d['source']}, {d['size']} bytes",
        f"  message-id {d['message_id'] or '(none)'}",
        f"  from       {d['sender'] or '-'} (envelope {d['envelope']['mail_from'] or '<>'})",
        f"  to         {', '.join(d['envelope']['rcpt_to']) or '-'}",
        f"  subject    {d['subject']}",
        f"  account    {d['account'] or '-'}",
        f"  sla due    {d['sla_due']}",
        f"  attempts   {d['attempts']}",
    ]
    for a in d["attachments"]:
        lines.append(
            f"  part       {a['name']}: {a['outcome']}"
            + (f" ({a['reason']})" if a["reason"] else "")
        )
    for doc in d["documents"]:
        lines.append(
            f"  document   {doc['kind']} {doc['number'] or doc['file']} "
            f"{doc['period_start'] or ''} {doc['currency']} {doc['total'] or ''}"
        )
    for r in d["replies"]:
        lines.append(
            f"  reply      {r['status']} to {r['to'] or '-'}"
            + (f" ({r['note']})" if r["note"] else "")
        )
    lines.append("  history:")
    for h in d["history"]:
        lines.append(
            f"    {h['at']}  {h['from'] or '-':>11} -> {h['to']:<11} {h['actor']}: {h['reason']}"
        )
    return "\n".join(lines)


def _sla_left(entry: dict[str, Any], now: datetime) -> str:
    if Status(entry["status"]) in FINAL:
        return "-"
    due = datetime.fromisoformat(entry["sla_due"].replace("Z", "+00:00"))
    seconds = int((due - now).total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours}h{rest // 60:02d}m"
