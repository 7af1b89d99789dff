"""The import pipeline: named steps run in order until one of them decides the outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from store.states import Status

Effects = Callable[[Session], None]


@dataclass(frozen=True)
class Outcome:
    status: Status  # imported, duplicate, rejected or held
    reason: str
    # what to write with the verdict, in the same transaction (documents, the reply)
    effects: Effects | None = None


@dataclass(frozen=True)
class ImportContext:
    """What a step may look at: the import and its message exactly as received, and what the
    steps before it learnt (`facts`, filled in as the pipeline goes)."""

    import_id: int
    attempt: int
    message_id: str
    raw: bytes
    source: str = "cli"  # smtp | imap | cli
    envelope_from: str | None = None  # None where no envelope was seen (cli, imap)
    envelope_to: tuple[str, ...] = ()
    received_at: datetime | None = None
    released: bool = False  # a person released it from held: accept what held it
    facts: dict[str, Any] = field(default_factory=dict)


class Step(Protocol):
    name: str

    def __call__(self, context: ImportContext) -> Outcome | None:
        """Return an outcome to end the pipeline, None to hand on; raise to fail the attempt."""
        ...


class TransientError(Exception):
    """A failure worth retrying as it is (a relay or database away for a moment)."""


VERDICTS = frozenset({Status.IMPORTED, Status.DUPLICATE, Status.REJECTED, Status.HELD})

UNDECIDED = Outcome(
    Status.HELD, "no import step decided what to do with this message; a person will look at it"
)


@dataclass(frozen=True)
class Pipeline:
    steps: Sequence[Step]

    def run(self, context: ImportContext) -> Outcome:
        for step in self.steps:
            outcome = step(context)
            if outcome is not None:
                if outcome.status not in VERDICTS:
                    raise ValueError(f"step {step.name} returned {outcome.status}")
                return outcome
        # Holding is the safe default: nothing is imported or answered without a decision.
        return UNDECIDED
