"""What ops do to one import: retry, release (approve a held one) and reject with a reason."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ingest.app import Services
from ingest.pipeline import ImportContext
from ingest.replying import Replies
from ingest.steps import AuthenticateSender, IdentifyAccount, ReadMessage, facts_of
from ingest.usage import UsageError
from store.documents import documents_of_import, drop_documents
from store.inbox import load_message
from store.models import Import
from store.queue import NotAllowed, ops_move
from store.states import Status, transition
from store.types import utcnow

RETRYABLE = frozenset({Status.QUARANTINED, Status.REJECTED})
RELEASABLE = frozenset({Status.HELD})
REJECTABLE = frozenset({Status.RECEIVED, Status.HELD, Status.QUARANTINED})
ACTOR = "ops"


def retry(services: Services, import_id: int) -> Import:
    return _move(
        services,
        import_id,
        Status.RECEIVED,
        RETRYABLE,
        "retried by ops",
        "retry takes quarantined or rejected imports; a held one is released",
    )


def release(services: Services, import_id: int) -> Import:
    return _move(
        services,
        import_id,
        Status.RECEIVED,
        RELEASABLE,
        "released by ops: what held it is accepted",
        "only a held import is released",
    )


def reject(services: Services, import_id: int, reason: str) -> None:
    """Rejected with `reason`, which goes to the customer in a reply (one transaction)."""
    if not reason.strip():
        raise UsageError("the reason is empty", "it goes to the customer: say what is wrong")
    context = _context(services, import_id)
    with services.db.write() as session:
        import_ = _get(session, import_id)
        if Status(import_.status) not in REJECTABLE:
            raise UsageError(
                f"import {import_id} is {import_.status}",
                "reject takes received, held or quarantined imports",
            )
        transition(session, import_, Status.REJECTED, reason=reason, actor=ACTOR)
        # only an imported message that a replay held has documents: rejected, they go
        drop_documents(session, [d.id for d in documents_of_import(session, import_id)])
        values = {
            "status": "rejected",
            "received_at": import_.received_at,
            "reason": reason,
            "review_by": None,
            "documents": [],
            "duplicates": [],
            "ignored": [],
            "months": [],
        }
        Replies(services.settings).write(
            session,
            context,
            facts_of(context),
            Status.REJECTED,
            "rejected",
            values,
        )


def _move(
    services: Services,
    import_id: int,
    to: Status,
    allowed: frozenset[Status],
    reason: str,
    hint: str,
) -> Import:
    try:
        moved = ops_move(services.db, import_id, to, allowed, reason, ACTOR, utcnow())
    except LookupError as exc:
        raise UsageError(f"no import {import_id}", "stax-import queue lists them") from exc
    except NotAllowed as exc:
        raise UsageError(str(exc), hint) from exc
    services.work_waiting.set()
    return moved


def _context(services: Services, import_id: int) -> ImportContext:
    """The message's facts (sender, account) as the pipeline saw them, for the reply."""
    with services.db.read() as session:
        import_ = _get(session, import_id)
        stored = load_message(session, import_.inbound_id)
    context = ImportContext(
        import_id,
        0,
        "",
        stored.raw or b"",
        source=stored.source,
        envelope_from=stored.envelope_from if stored.source == "smtp" else None,
        envelope_to=stored.envelope_to,
        received_at=stored.received_at,
    )
    ReadMessage()(context)
    AuthenticateSender(services.settings)(context)
    IdentifyAccount(services.db, services.settings, services.recipients)(context)
    return context


def _get(session: Session, import_id: int) -> Import:
    import_ = session.get(Import, import_id)
    if import_ is None:
        raise UsageError(f"no import {import_id}", "stax-import queue lists them")
    return import_
