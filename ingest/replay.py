"""`stax-import replay`: stored mail read again with the current parsers and compared with what
was stored; where it differs, the import goes back to a worker, or before a person.

Nothing is re-counted by a machine: a changed import that counted nothing (rejected, held,
quarantined) is queued again and decided afresh by a worker; one that counted spend, or
repeated counted documents (imported, duplicate), is held with what differs, so that a person
releases it (the current reading replaces the stored one) or rejects it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.app import Services
from ingest.pipeline import ImportContext
from ingest.readings import Reading, current_reading, differences, stored_reading
from ingest.steps import FindFiles, ReadDocuments, ReadMessage, facts_of
from ingest.views import iso
from store.documents import attachments_of_import, documents_of_import
from store.inbox import StoredMessage, load_message
from store.models import Import
from store.queue import REPLAY_ACTOR, NotAllowed, ops_move
from store.states import Status
from store.types import utcnow

UNDECIDED = frozenset({Status.RECEIVED, Status.PROCESSING})
COUNTED = frozenset({Status.IMPORTED, Status.DUPLICATE})
MAX_REASON = 1000


@dataclass
class Replayed:
    """What a replay found for one import, and what it did (or, in a dry run, would do)."""

    import_id: int
    received_at: datetime
    status: Status
    result: str  # unchanged | changed | raw mail purged | skipped | failed
    changes: list[str] = field(default_factory=list)
    note: str | None = None
    next_status: Status | None = None

    @property
    def text(self) -> str:
        if self.result == "changed":
            text = "changed: " + "; ".join(self.changes)
            return f"{text} [{self.note}]" if self.note else text
        return f"{self.result}: {self.note}" if self.note else self.result

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.import_id,
            "received_at": iso(self.received_at),
            "status": self.status.value,
            "result": self.result,
            "changes": self.changes,
            "note": self.note,
            "next_status": self.next_status.value if self.next_status else None,
        }


@dataclass(frozen=True)
class _Stored:
    """One import as the replay read it, before reading its mail again."""

    import_id: int
    status: Status
    updated_at: datetime
    received_at: datetime
    account_id: int | None
    reason: str | None
    message: StoredMessage
    reading: Reading
    counted: bool  # it has documents of its own


def replay(
    services: Services,
    import_ids: Sequence[int],
    dry_run: bool,
    on_each: Callable[[int], None] = lambda done: None,
) -> list[Replayed]:
    """Each import in turn, in the order given; `on_each` hears how many are done."""
    results = []
    for done, import_id in enumerate(import_ids, 1):
        results.append(replay_one(services, import_id, dry_run))
        on_each(done)
    return results


def replay_one(services: Services, import_id: int, dry_run: bool) -> Replayed:
    stored = _stored(services, import_id)
    result = Replayed(import_id, stored.received_at, stored.status, "skipped")
    if stored.status in UNDECIDED:
        result.note = "not decided yet: a worker reads it with the current parsers"
        return result
    if stored.account_id is None:  # the account is known before any file is read
        result.note = f"its files were never read ({stored.reason or stored.status.value})"
        return result
    if stored.message.raw is None:
        result.result = "raw mail purged"
        return result
    try:
        now = read_again(services, import_id, stored.message)
    except Exception as exc:  # a parser bug: said for this import, the others go on
        result.result, result.note = "failed", f"{type(exc).__name__}: {exc}"[:MAX_REASON]
        return result
    result.changes = differences(stored.reading, now)
    result.result = "changed" if result.changes else "unchanged"
    if result.changes:
        _decide(services, stored, result, dry_run)
    return result


def read_again(services: Services, import_id: int, message: StoredMessage) -> Reading:
    """The pipeline's own reading steps (the same parse child, limits and USD conversion),
    without the steps that decide or write."""
    assert message.raw is not None
    context = ImportContext(
        import_id,
        0,
        "",
        message.raw,
        source=message.source,
        envelope_from=message.envelope_from if message.source == "smtp" else None,
        envelope_to=message.envelope_to,
        received_at=message.received_at,
    )
    for step in (ReadMessage(), FindFiles(), ReadDocuments(services.rates)):
        step(context)
    return current_reading(facts_of(context).files)


def replay_table(results: Sequence[Replayed]) -> str:
    lines = [f"{'ID':>6}  {'RECEIVED (UTC)':<16}  {'STATUS':<11}  {'NEXT':<8}  RESULT"]
    for r in results:
        received = (iso(r.received_at) or "")[:16].replace("T", " ")
        then = r.next_status.value if r.next_status else "-"
        lines.append(f"{r.import_id:>6}  {received:<16}  {r.status.value:<11}  {then:<8}  {r.text}")
    return "\n".join(lines)


def summary(results: Sequence[Replayed], dry_run: bool) -> str:
    counts = Counter(r.result for r in results)
    moved = Counter(r.next_status.value for r in results if r.next_status)
    parts = [f"{count} {result}" for result, count in sorted(counts.items())]
    verb = "would go" if dry_run else "went"
    parts += [f"{count} {verb} to {status}" for status, count in sorted(moved.items())]
    tail = " (dry run: nothing was changed)" if dry_run else ""
    noun = "import" if len(results) == 1 else "imports"
    return f"{len(results)} {noun}: {', '.join(parts) or 'none selected'}{tail}"


def _decide(services: Services, stored: _Stored, result: Replayed, dry_run: bool) -> None:
    if stored.status in COUNTED:
        target = Status.HELD
    elif stored.counted:  # an imported one held before: it waits for a person already
        result.note = "its stored documents still count: a person releases or rejects it"
        return
    else:
        target = Status.RECEIVED
    if dry_run:
        result.next_status = target
        return
    reason = f"replayed: the current parsers read it differently: {'; '.join(result.changes)}"
    try:
        # the ops actions' compare-and-set, and more: if a worker or a person moved it since
        # it was read (even back to the same status), this comparison is stale: leave it
        ops_move(
            services.db,
            stored.import_id,
            target,
            frozenset({stored.status}),
            reason[:MAX_REASON],
            REPLAY_ACTOR,
            utcnow(),
            unchanged_since=stored.updated_at,
        )
    except (NotAllowed, LookupError) as exc:
        result.note = f"{exc}: left alone (replay it again to compare anew)"
        return
    result.next_status = target
    services.work_waiting.set()


def _stored(services: Services, import_id: int) -> _Stored:
    with services.db.read() as session:
        import_ = session.get_one(Import, import_id)
        documents = documents_of_import(session, import_id)
        return _Stored(
            import_id,
            Status(import_.status),
            import_.updated_at,
            import_.received_at,
            import_.account_id,
            import_.reason,
            load_message(session, import_.inbound_id),
            stored_reading(attachments_of_import(session, import_id), documents),
            bool(documents),
        )
