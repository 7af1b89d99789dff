"""Workers: claim received imports, run the pipeline, record the verdict or the failure."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from ingest.pipeline import ImportContext, Pipeline
from store.db import Database
from store.inbox import StoredMessage, load_message
from store.queue import Claim, RetryPolicy, claim_next, fail_attempt, finish, requeue_expired_leases
from store.states import TransitionConflict
from store.types import utcnow

log = structlog.get_logger()


def worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:worker-{index}"


class Worker:
    """One claim at a time. A crash of the whole process is covered by the lease: another
    worker requeues the import once `lease` has passed."""

    def __init__(
        self,
        db: Database,
        pipeline: Pipeline,
        policy: RetryPolicy,
        lease: timedelta,
        name: str,
        clock: Callable[[], datetime] = utcnow,
        on_verdict: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._pipeline = pipeline
        self._policy = policy
        self._lease = lease
        self.name = name
        self._clock = clock
        self._on_verdict = on_verdict  # e.g. wake the outbox: a reply may be waiting

    def run_once(self) -> bool:
        """Process one due import; False when there was none."""
        for lost in requeue_expired_leases(self._db, self._policy, self._clock()):
            log.warning(
                "requeued an import whose worker was lost",
                import_id=lost.import_id,
                lost_worker=lost.lost_worker,
                now=lost.status.value,
            )
        claim = claim_next(self._db, self.name, self._lease, self._clock())
        if claim is None:
            return False
        with structlog.contextvars.bound_contextvars(
            import_id=claim.import_id, message_id=claim.message_id
        ):
            self._process(claim)
        return True

    def run(self, stop: threading.Event, wakeup: threading.Event, idle_poll: float) -> None:
        """Work until `stop` is set; the import in hand is always finished first."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker loop error")  # the database may be away; try again
                busy = False
            if not busy:
                wakeup.wait(idle_poll)
                wakeup.clear()

    @staticmethod
    def _context(claim: Claim, stored: StoredMessage) -> ImportContext:
        assert stored.raw is not None
        return ImportContext(
            claim.import_id,
            claim.attempt,
            claim.message_id,
            stored.raw,
            source=stored.source,
            envelope_from=stored.envelope_from if stored.source == "smtp" else None,
            envelope_to=stored.envelope_to,
            received_at=stored.received_at,
            released=claim.released,
        )

    def _process(self, claim: Claim) -> None:
        with self._db.read() as session:
            stored = load_message(session, claim.inbound_id)
        try:
            if stored.raw is None:
                raise RuntimeError("the raw message is no longer stored")
            outcome = self._pipeline.run(self._context(claim, stored))
            finish(self._db, claim, outcome.status, outcome.reason, self.name, outcome.effects)
        except TransitionConflict:
            # our lease ran out and someone requeued the import; their attempt will decide
            log.warning("lost the import before finishing", attempt=claim.attempt)
            return
        except Exception as exc:
            # a step, or writing the verdict (say a unique index that another message's
            # import won a moment ago): the attempt failed, the next one sees the new state
            error = f"{type(exc).__name__}: {exc}"[:2000]
            status = fail_attempt(self._db, claim, error, self.name, self._policy, self._clock())
            log.warning("attempt failed", attempt=claim.attempt, error=error, now=status.value)
            return
        self._on_verdict()
        log.info("processed", status=outcome.status.value, reason=outcome.reason)
