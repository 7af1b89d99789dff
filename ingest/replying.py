"""The automatic reply to one import: whether to answer, and the reply in the outbox, written
in the same transaction as the verdict (the transactional outbox)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.orm import Session

from config.settings import Settings
from ingest.pipeline import Effects, ImportContext
from notify.compose import compose_reply
from notify.rate_limits import error_fingerprint, history_since, rate_limit_refusal
from notify.render import render_reply
from notify.suppression import auto_reply_refusal
from store.outbox import next_purpose, queue_mail, recent_replies, record_suppressed
from store.states import Status
from store.types import utcnow

if TYPE_CHECKING:
    from ingest.steps import Facts

log = structlog.get_logger()

ContextBuilder = Callable[[Session], dict[str, Any]]


class Replies:
    @property
    def settings(self) -> Settings:
        return self._settings

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._own = {settings.import_address, settings.support_address, settings.ops_address}

    def effects(
        self,
        context: ImportContext,
        facts: Facts,
        status: Status,
        template: str,
        extra: dict[str, Any] | ContextBuilder,
        store: Effects | None = None,
    ) -> Effects:
        """What the verdict writes: `store` first (documents), then the reply or the reason
        there is none. `extra` may be a function of the session, to see what `store` wrote."""

        def write(session: Session) -> None:
            if store is not None:
                store(session)
            values = extra(session) if callable(extra) else extra
            self.write(session, context, facts, status, template, values)

        return write

    def write(
        self,
        session: Session,
        context: ImportContext,
        facts: Facts,
        status: Status,
        template: str,
        extra: dict[str, Any],
    ) -> None:
        """The reply for this verdict. The first verdict's is the automatic reply; after a
        person acts (release, reject) the new verdict gets one follow-up; never more."""
        purpose = next_purpose(session, context.import_id)
        if purpose is None:
            log.info("no automatic reply", reason="this message was answered twice already")
            return
        now = self._clock()
        to = facts.sender.address if facts.sender and facts.sender.authenticated else None
        fingerprint = None
        if status in (Status.REJECTED, Status.HELD):
            fingerprint = error_fingerprint(template, [str(extra.get("reason") or template)])
        why_not = self._why_not(session, context, facts, to, fingerprint, now)
        if why_not is not None or to is None:
            log.info("no automatic reply", reason=why_not)
            record_suppressed(
                session,
                import_id=context.import_id,
                purpose=purpose,
                to_address=to or "",
                reason=why_not or "",
                now=now,
            )
            return
        values = {
            "import_id": context.import_id,
            "original_subject": facts.original.display_subject,
            "import_address": facts.personal_address or self._settings.import_address,
            "support_address": self._settings.support_address,
            **extra,
        }
        rendered = render_reply(template, values)  # a template error is ours: let it fail
        try:
            reply = compose_reply(
                facts.original,
                rendered,
                context.import_id,
                status.value,
                self._settings.import_address,
                to,
                now=now,
            )
        except ValueError as exc:  # an address no mail can be sent to
            log.info("no automatic reply", reason=str(exc))
            record_suppressed(
                session,
                import_id=context.import_id,
                purpose=purpose,
                to_address=to,
                reason=f"cannot answer: {exc}",
                now=now,
            )
            return
        queue_mail(
            session,
            import_id=context.import_id,
            purpose=purpose,
            message_id=str(reply["Message-ID"]),
            to_address=to,
            raw=reply.as_bytes(),
            fingerprint=fingerprint,
            now=now,
        )

    def _why_not(
        self,
        session: Session,
        context: ImportContext,
        facts: Facts,
        to: str | None,
        fingerprint: str | None,
        now: datetime,
    ) -> str | None:
        if to is None:
            return "the sender is not authenticated: no reply (no backscatter)"
        if facts.thread_of is not None:
            return f"an answer on the thread of import {facts.thread_of}: support answers"
        refusal = auto_reply_refusal(facts.message, context.envelope_from, self._own)
        if refusal is not None:
            return refusal
        history = recent_replies(session, history_since(now))
        return rate_limit_refusal(to, fingerprint, now, history)
