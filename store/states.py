"""The import state machine: the allowed moves, and the one function that makes them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store.models import Import, ImportEvent
from store.types import utcnow


class Status(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    HELD = "held"
    QUARANTINED = "quarantined"


# None is "not yet created". Anything not in this table is refused.
ALLOWED: dict[Status | None, frozenset[Status]] = {
    # created waiting for a worker, or rejected at the door (an unreadable header block)
    None: frozenset({Status.RECEIVED, Status.REJECTED}),
    # claimed by a worker, or rejected by ops before any worker got to it
    Status.RECEIVED: frozenset({Status.PROCESSING, Status.REJECTED}),
    # a worker's verdict; back to received when an attempt failed or its lease ran out
    Status.PROCESSING: frozenset(
        {
            Status.IMPORTED,
            Status.DUPLICATE,
            Status.REJECTED,
            Status.HELD,
            Status.QUARANTINED,
            Status.RECEIVED,
        }
    ),
    # a person releases (runs it again) or rejects
    Status.HELD: frozenset({Status.RECEIVED, Status.REJECTED}),
    Status.QUARANTINED: frozenset({Status.RECEIVED, Status.REJECTED}),
    # ops may retry a rejection, e.g. after a parser fix
    Status.REJECTED: frozenset({Status.RECEIVED}),
    # a replay found that the current parsers read it differently: what it counted (or
    # the documents it repeated) is put before a person, never re-counted by a machine
    Status.IMPORTED: frozenset({Status.HELD}),
    Status.DUPLICATE: frozenset({Status.HELD}),
}

FINAL = frozenset({Status.IMPORTED, Status.DUPLICATE, Status.REJECTED})
NEEDS_A_PERSON = frozenset({Status.HELD, Status.QUARANTINED})


class IllegalTransition(Exception):
    """The table does not allow this move."""


class TransitionConflict(Exception):
    """Someone else moved the import first (another worker, an ops command)."""


def creation_event(
    import_id: int, status: Status, *, reason: str, actor: str, at: datetime
) -> dict[str, Any]:
    """The first event of an import, from nothing to its initial status, as a row to insert
    (the door stores whole batches at once)."""
    if status not in ALLOWED[None]:
        raise IllegalTransition(f"an import cannot start as {status}")
    return {
        "import_id": import_id,
        "from_status": None,
        "to_status": status.value,
        "reason": reason,
        "actor": actor,
        "at": at,
    }


def transition(
    session: Session,
    import_: Import,
    to: Status,
    *,
    reason: str,
    actor: str,
    changes: dict[str, Any] | None = None,
) -> None:
    """Move `import_` to `to` if the table allows it and nobody moved it meanwhile.

    The UPDATE is conditional on the status we read (compare-and-set), so two workers or a
    worker and an ops command can never both win; the loser gets TransitionConflict.
    """
    current = Status(import_.status)
    if to not in ALLOWED[current]:
        raise IllegalTransition(f"import {import_.id}: {current} -> {to} is not allowed")
    now = utcnow()
    values: dict[str, Any] = {"status": to.value, "updated_at": now, "reason": reason}
    values.update(changes or {})
    result = session.execute(
        update(Import)
        .where(Import.id == import_.id, Import.status == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TransitionConflict(f"import {import_.id} is no longer {current}")
    for key, value in values.items():
        set_committed_value(import_, key, value)
    session.add(
        ImportEvent(
            import_id=import_.id,
            from_status=current.value,
            to_status=to.value,
            reason=reason,
            actor=actor,
            at=now,
        )
    )
