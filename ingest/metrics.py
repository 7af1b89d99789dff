"""Prometheus metrics: what the service counts as it works, and what the database says on
each scrape."""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from ingest.sla import sla_due
from store.db import Database
from store.models import Import, ImportEvent, OutboxMessage
from store.queue_page import OPEN
from store.states import Status
from store.types import utcnow

log = structlog.get_logger()

# The service's own counts, shared by every part of one process.
REGISTRY = CollectorRegistry()

PARSE_FAILURES = Counter(
    "stax_parse_failures",
    "Files the parsers refused, by reason (digits and quoted names folded)",
    ["reason"],
    registry=REGISTRY,
)
SLA_WARNINGS = Counter(
    "stax_sla_warnings",
    "Unanswered imports found to have used 75% of their SLA time",
    registry=REGISTRY,
)
SLA_BREACHES = Counter(
    "stax_sla_breaches",
    "Unanswered imports found past their SLA due time",
    registry=REGISTRY,
)
INTAKE_LATENCY = Histogram(
    "stax_intake_latency_seconds",
    "From the end of a message's data to its durable commit (what the sender waits for)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
REPLY_LATENCY = Histogram(
    "stax_reply_latency_seconds",
    "From a message's arrival to its reply leaving the outbox",
    buckets=(1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 2 * 86400, 4 * 86400),
    registry=REGISTRY,
)

MAX_REASONS = 50  # a label per reason, but never an unbounded number of series
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’")  # noqa: RUF001
_DIGITS = re.compile(r"\d+")
_reasons: set[str] = set()
_reasons_lock = threading.Lock()


def count_parse_failure(reason: str) -> None:
    PARSE_FAILURES.labels(reason=reason_label(reason)).inc()


def count_sla_warning() -> None:
    SLA_WARNINGS.inc()


def count_sla_breach() -> None:
    SLA_BREACHES.inc()


def observe_intake(seconds: float) -> None:
    INTAKE_LATENCY.observe(max(seconds, 0.0))


def observe_reply(seconds: float) -> None:
    REPLY_LATENCY.observe(max(seconds, 0.0))


def reason_label(reason: str) -> str:
    """A refusal's reason as a label: names and numbers folded so that one kind of failure is
    one series, and at most MAX_REASONS of them before the rest count as "other"."""
    label = _DIGITS.sub("N", _QUOTED.sub("…", reason)).strip()[:80] or "unknown"
    with _reasons_lock:
        if label not in _reasons:
            if len(_reasons) >= MAX_REASONS:
                return "other"
            _reasons.add(label)
    return label


class DatabaseCollector(Collector):
    """Gauges read from the database on each scrape, so that every process of the service
    reports the same queue, and a restart loses nothing."""

    def __init__(self, db: Database, calendar: str, clock: Callable[[], datetime] = utcnow) -> None:
        self._db, self._calendar, self._clock = db, calendar, clock

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        up, depth, total, oldest, overdue, outbox = self._families()
        try:
            self._fill(depth, total, oldest, overdue, outbox)
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer", error=str(exc).splitlines()[0])
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, depth, total, oldest, overdue, outbox]

    @staticmethod
    def _families() -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            GaugeMetricFamily("stax_database_up", "1 when the database answered this scrape"),
            GaugeMetricFamily("stax_queue_depth", "Imports in each status now", labels=["status"]),
            CounterMetricFamily(
                "stax_imports",
                "Moves of imports into each status (an import retried counts again)",
                labels=["status"],
            ),
            GaugeMetricFamily(
                "stax_oldest_unprocessed_seconds",
                "Age of the oldest import still received or processing (0 when none)",
            ),
            GaugeMetricFamily(
                "stax_sla_overdue_imports",
                "Unfinished imports (received, processing, held, quarantined) past SLA due",
            ),
            GaugeMetricFamily(
                "stax_outbox_mail",
                "Outbound mail by status: pending (waiting or being retried) and failed (given "
                "up: the relay refused it, or kept deferring it for days); the customer has "
                "no answer until a person acts",
                labels=["status"],
            ),
        )

    def _fill(
        self,
        depth: GaugeMetricFamily,
        total: CounterMetricFamily,
        oldest: GaugeMetricFamily,
        overdue: GaugeMetricFamily,
        outbox: GaugeMetricFamily,
    ) -> None:
        now = self._clock()
        with self._db.read() as session:
            by_status = _counts(session, Import.status)
            moves = _counts(session, ImportEvent.to_status)
            mail = _counts(session, OutboxMessage.status)
            first = session.scalar(
                select(func.min(Import.received_at)).where(
                    Import.status.in_((Status.RECEIVED.value, Status.PROCESSING.value))
                )
            )
            open_arrivals = session.scalars(
                select(Import.received_at)
                .where(Import.status.in_([s.value for s in OPEN]))
                .order_by(Import.received_at)
            ).all()
        for status in Status:
            depth.add_metric([status.value], by_status.get(status.value, 0))
            total.add_metric([status.value], moves.get(status.value, 0))
        for status_name in ("pending", "failed"):
            outbox.add_metric([status_name], mail.get(status_name, 0))
        oldest.add_metric([], max((now - first).total_seconds(), 0.0) if first else 0.0)
        overdue.add_metric([], _past_due(list(open_arrivals), now, self._calendar))


def _counts(session: Session, column: InstrumentedAttribute[str]) -> dict[str, int]:
    return {
        value: count
        for value, count in session.execute(select(column, func.count()).group_by(column))
    }


def _past_due(arrivals: list[datetime], now: datetime, calendar: str) -> int:
    """How many of the sorted arrivals are due before `now`. The due time grows with the
    arrival time, so a bisection asks the calendar a few times, not once per import."""
    return bisect.bisect_left(arrivals, now, key=lambda at: sla_due(at, calendar))


class _ProcessMetrics(Collector):
    """The module's registry seen as one collector of a console's own registry."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def metrics_registry(
    db: Database, calendar: str, clock: Callable[[], datetime] = utcnow
) -> CollectorRegistry:
    """What `/metrics` shows: this process's counts and the database's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector(db, calendar, clock))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
