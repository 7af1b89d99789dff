"""What the parsers made of one message, as stored then or as read again now, and how two
such readings differ, in words ops can act on (`stax-import replay`).

A reading holds what a replay compares: which files were found, which were refused and why,
and, where the import stored its documents, each document's kind, number, period, currency,
total, line count and USD total. Held, duplicate and rejected imports store no documents of
their own (the documents a duplicate repeats belong to the import that counted them), so for
them the files are compared, not the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ingest.steps import FileRead
from parsers.base import Document as ParsedDocument
from store.models import Attachment
from store.models import Document as StoredDocument

READ_OUTCOMES = frozenset({"imported", "held", "duplicate"})  # the file gave documents
NO_DOCUMENT = ""  # a file refused without a reason: nothing in it was a document


@dataclass(frozen=True)
class Figures:
    """What a replay compares of one document."""

    kind: str
    number: str | None
    file: str
    period_start: date | None
    period_end: date | None
    currency: str
    total: Decimal | None
    lines: int
    total_usd: Decimal | None  # None where no exchange rate was known

    @property
    def key(self) -> tuple[str, str, date | None]:
        return (self.kind, self.number or self.file, self.period_start)

    @property
    def label(self) -> str:
        kind = self.kind.replace("_", " ")
        return f"{kind} {self.number}" if self.number else f"{kind} {self.file}"

    def compared(self) -> dict[str, object]:
        return {
            "period": f"{_day(self.period_start)}..{_day(self.period_end)}",
            "currency": self.currency,
            "total": self.total,
            "lines": self.lines,
            "USD total": self.total_usd,
        }


@dataclass(frozen=True)
class Reading:
    read: frozenset[str]  # the files that gave documents
    refused: dict[str, str]  # file -> why it was refused (NO_DOCUMENT: nothing in it)
    documents: tuple[Figures, ...] | None  # None: not stored for this import

    def state(self, name: str) -> str | None:
        if name in self.read:
            return "read"
        return "refused" if name in self.refused else None

    def labels(self, name: str) -> str:
        labels = [d.label for d in self.documents or () if d.file == name]
        return ", ".join(labels) or "documents"


def stored_reading(
    attachments: Sequence[Attachment], documents: Sequence[StoredDocument]
) -> Reading:
    """What the import's verdict stored: its files (skipped parts were never parsed) and,
    where it counted them, its documents."""
    names = _unique([a.name for a in attachments])
    read = {n for n, a in zip(names, attachments, strict=True) if a.outcome in READ_OUTCOMES}
    refused = {
        n: a.reason or NO_DOCUMENT
        for n, a in zip(names, attachments, strict=True)
        if a.outcome == "refused"
    }
    figures = tuple(_stored_figures(d) for d in documents) if documents else None
    return Reading(frozenset(read), refused, figures)


def current_reading(files: Sequence[FileRead]) -> Reading:
    """What the current parsers made of the files (`ingest.steps.ReadDocuments`)."""
    names = _unique([f.name for f in files])
    read = {n for n, f in zip(names, files, strict=True) if f.documents and not f.refusal}
    refused = {
        n: f.refusal or NO_DOCUMENT
        for n, f in zip(names, files, strict=True)
        if f.refusal or not f.documents
    }
    figures = tuple(_parsed_figures(d) for f in files for d in f.documents)
    return Reading(frozenset(read), refused, figures)


def differences(before: Reading, now: Reading) -> list[str]:
    """One short sentence per difference; none when the current parsers read the message as
    it was read then."""
    changes: list[str] = []
    for name in sorted(before.read | set(before.refused) | now.read | set(now.refused)):
        change = _file_change(name, before, now)
        if change:
            changes.append(change)
    if before.documents is not None and now.documents is not None:
        changes += _document_changes(before, now)
    return changes


def _file_change(name: str, before: Reading, now: Reading) -> str | None:
    was, is_ = before.state(name), now.state(name)
    new_reason = _reason(now.refused.get(name))
    old_reason = _reason(before.refused.get(name))
    if was is None:
        found = f"read as {now.labels(name)}" if is_ == "read" else f"refused: {new_reason}"
        return f"{name}: now found, {found}"
    if is_ is None:
        return f"{name}: no longer found"
    if was == "refused" and is_ == "read":
        return f"{name}: now read as {now.labels(name)} (was refused: {old_reason})"
    if was == "read" and is_ == "refused":
        return f"{name}: now refused: {new_reason}"
    if was == "refused" and old_reason != new_reason:
        return f"{name}: now refused because {new_reason} (was: {old_reason})"
    return None


def _document_changes(before: Reading, now: Reading) -> list[str]:
    """Documents of the files read both then and now (the others are said per file)."""
    said = before.read ^ now.read
    old = {d.key: d for d in before.documents or () if d.file not in said}
    new = {d.key: d for d in now.documents or () if d.file not in said}
    changes = [f"{old[k].label}: no longer read" for k in old if k not in new]
    changes += [f"{new[k].label}: newly read" for k in new if k not in old]
    for key in old.keys() & new.keys():
        then, current = old[key].compared(), new[key].compared()
        fields = [f"{f} {then[f]} -> {current[f]}" for f in then if then[f] != current[f]]
        if fields:
            changes.append(f"{new[key].label}: {', '.join(fields)}")
    return sorted(changes)


def _stored_figures(document: StoredDocument) -> Figures:
    return Figures(
        document.kind,
        document.number,
        document.file_name,
        document.period_start,
        document.period_end,
        document.currency,
        document.total,
        len(document.lines),
        _usd(document.fx_rate, (line.amount_usd for line in document.lines)),
    )


def _parsed_figures(document: ParsedDocument) -> Figures:
    return Figures(
        document.kind,
        document.number,
        document.file,
        document.period_start,
        document.period_end,
        document.currency,
        document.total,
        len(document.lines),
        _usd(document.fx_rate, (line.amount_usd for line in document.lines)),
    )


def _usd(fx_rate: Decimal | None, amounts: Iterable[Decimal | None]) -> Decimal | None:
    # as the reply sums it (ingest.verdict): no rate, no USD
    if fx_rate is None:
        return None
    return sum((a or Decimal(0) for a in amounts), Decimal(0))


def _unique(names: list[str]) -> list[str]:
    """Names that tell apart two files of one message that share a name."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _reason(reason: str | None) -> str:
    return "no document in it" if reason == NO_DOCUMENT else reason or "-"


def _day(day: date | None) -> str:
    return day.isoformat() if day else "?"
