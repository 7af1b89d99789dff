"""What ops see of imports: the queue and one import, as JSON-ready dicts and text tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.sla import sla_due
from store.models import Import
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


def import_detail(import_: Import, calendar: str) -> dict[str, Any]:
    """`show`: the queue row plus envelope, message facts and the status history."""
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
            # filled in by the pipeline issues: attachments, documents, replies
            "attachments": [],
            "documents": [],
            "replies": [],
        }
    )
    return detail


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
        "  history:",
    ]
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
