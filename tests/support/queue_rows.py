"""Many imports at once, written straight into the tables: a queue of thousands in a second,
for the console's paging and timing tests (real imports come by mail in the e2e tests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from store.db import Database
from store.models import Account, Import, ImportEvent, InboundMessage
from store.types import utcnow


@dataclass(frozen=True)
class Row:
    status: str = "received"
    age: timedelta = timedelta(minutes=5)
    account: str | None = None
    reason: str | None = None


def add_imports(db: Database, rows: Sequence[Row], now: datetime | None = None) -> list[int]:
    """Insert one inbound message, import and creation event per row; returns the import ids
    in the order of `rows` (ascending)."""
    now = now or utcnow()
    with db.write() as session:
        accounts = _accounts(session, {r.account for r in rows if r.account})
        inbound_ids = session.scalars(
            insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True),
            [_inbound(i, now - r.age) for i, r in enumerate(rows)],
        ).all()
        import_ids = session.scalars(
            insert(Import).returning(Import.id, sort_by_parameter_order=True),
            [
                {
                    "inbound_id": inbound_id,
                    "account_id": accounts.get(r.account or ""),
                    "status": r.status,
                    "reason": r.reason,
                    "attempts": 0 if r.status == "received" else 1,
                    "next_attempt_at": now - r.age,
                    "received_at": now - r.age,
                    "updated_at": now,
                }
                for inbound_id, r in zip(inbound_ids, rows, strict=True)
            ],
        ).all()
        session.execute(
            insert(ImportEvent),
            [
                {
                    "import_id": import_id,
                    "from_status": None,
                    "to_status": r.status,
                    "reason": r.reason or "made by the test",
                    "actor": "test",
                    "at": now - r.age,
                }
                for import_id, r in zip(import_ids, rows, strict=True)
            ],
        )
    return list(import_ids)


def _inbound(n: int, received_at: datetime) -> dict[str, object]:
    raw = f"Message-ID: <bulk-{n}-{received_at.timestamp()}@test>\r\n\r\nhello\r\n".encode()
    return {
        "message_id": f"<bulk-{n}-{received_at.timestamp()}@test>",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "source": "cli",
        "envelope_from": "",
        "envelope_to": [],
        "header_from": f"finance{n % 17}@customer.example",
        "subject": f"Mistral import #{n}",
        "received_at": received_at,
        "raw": raw,
    }


def _accounts(session: Session, names: set[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name in sorted(names):
        account = Account(name=name, token=hashlib.sha256(name.encode()).hexdigest()[:32])
        session.add(account)
        session.flush()
        ids[name] = account.id
    return ids
