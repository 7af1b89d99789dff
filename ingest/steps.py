"""The import steps, in order: read the message, screen the subject, know the sender and the
account, find the files, read the documents. `ingest.verdict` then decides."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from email.utils import getaddresses

from sqlalchemy import update

from config.settings import Settings
from ingest import metrics
from ingest.pipeline import ImportContext, Outcome
from ingest.recipients import RecipientPolicy
from ingest.replying import Replies
from ingest.sender_auth import SenderCheck, check_sender
from notify.compose import OriginalMessage
from parsers.base import Document, Refused
from parsers.fx import Rates
from parsers.mime import Extracted, extract_documents
from parsers.registry import convert_to_usd
from parsers.sandbox import parse_in_child
from store.accounts import account_for_token, accounts_for_sender
from store.db import Database
from store.models import Import
from store.states import Status

_IMPORT_SUBJECT = re.compile(r"mistral\s*import", re.IGNORECASE)
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")


@dataclass
class FileRead:
    """One candidate file and what the parsers made of it."""

    name: str
    path: str
    sha256: str
    size: int
    documents: list[Document] = field(default_factory=list)
    refusal: str | None = None


@dataclass
class Facts:
    """What the steps learn about one message, for the steps after them."""

    message: Message = field(default_factory=Message)
    original: OriginalMessage = field(default_factory=OriginalMessage)
    sender: SenderCheck | None = None
    account_id: int | None = None
    account_name: str | None = None
    personal_address: str | None = None
    extracted: Extracted | None = None
    files: list[FileRead] = field(default_factory=list)
    thread_of: int | None = None  # an answer on this import's thread


def facts_of(context: ImportContext) -> Facts:
    facts = context.facts.setdefault("import", Facts())
    assert isinstance(facts, Facts)
    return facts


class ReadMessage:
    name = "read message"

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        facts.message = message_from_bytes(context.raw, policy=policy.compat32)
        facts.original = OriginalMessage.from_headers(facts.message)
        return None


class AuthenticateSender:
    """Who sent it, proven per STAX_SENDER_AUTH. Decides nothing yet: it tells the steps
    after it whether the sender may be answered or imported for."""

    name = "authenticate sender"

    def __init__(self, settings: Settings) -> None:
        self._mode, self._authserv_id = settings.sender_auth, settings.authserv_id

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        facts.sender = check_sender(facts.message, context.raw, self._mode, self._authserv_id)
        return None


class ScreenSubject:
    """Only mail that says "Mistral import" is imported; the rest gets the help reply."""

    name = "screen subject"

    def __init__(self, replies: Replies) -> None:
        self._replies = replies

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        if facts.thread_of is not None or _IMPORT_SUBJECT.search(facts.original.display_subject):
            return None  # an answer on a thread is never screened out
        reason = 'the subject does not say "Mistral import"'
        return Outcome(
            Status.REJECTED,
            reason,
            self._replies.effects(context, facts, Status.REJECTED, "help", {}),
        )


class IdentifyAccount:
    """Whose account it is for: the token of a personal address decides; on the shared
    address, a registered sender or domain does. Anything uncertain (an unauthenticated or
    unknown sender) is held for a person, never imported, never answered, never bounced."""

    name = "identify account"

    def __init__(self, db: Database, settings: Settings, recipients: RecipientPolicy) -> None:
        self._db, self._settings, self._recipients = db, settings, recipients

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        s = self._settings
        assert facts.sender is not None
        if not facts.sender.authenticated:
            return Outcome(Status.HELD, f"the sender is not authenticated: {facts.sender.reason}")
        token = self._token(context, facts.message)
        with self._db.read() as session:
            if token is not None:
                account = account_for_token(session, token)
                if account is None:
                    return Outcome(Status.HELD, "the personal import address is not known")
                candidates = [account]
            else:
                candidates = accounts_for_sender(session, facts.sender.address or "")
        if not candidates:
            return Outcome(
                Status.HELD, f"{facts.sender.address} is not a registered sender of any account"
            )
        if len(candidates) > 1:
            names = ", ".join(sorted(a.name for a in candidates))
            return Outcome(
                Status.HELD,
                f"{facts.sender.address} is registered for several "
                f"accounts ({names}): a person must choose",
            )
        facts.account_id, facts.account_name = candidates[0].id, candidates[0].name
        with self._db.write() as session:  # ops see whose import it is from now on
            session.execute(
                update(Import)
                .where(Import.id == context.import_id)
                .values(account_id=candidates[0].id)
            )
        local, _, domain = s.import_address.partition("@")
        facts.personal_address = f"{local}+{candidates[0].token}@{domain}"
        return None

    def _token(self, context: ImportContext, message: Message) -> str | None:
        recipients = list(context.envelope_to)
        if not recipients:  # no envelope (ingest, IMAP): the headers say where it went
            values = [str(v) for h in _RECIPIENT_HEADERS for v in message.get_all(h, [])]
            recipients = [a for _, a in getaddresses(values) if a]
        for address in recipients:
            token = self._recipients.token_of(address)
            if token is not None:
                return token
        return None


class FindFiles:
    name = "find files"

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        facts.extracted = extract_documents(context.raw)
        return None


class ReadDocuments:
    """Each file is parsed in a child process with limits, then converted to USD."""

    name = "read documents"

    def __init__(self, rates: Rates) -> None:
        self._rates = rates

    def __call__(self, context: ImportContext) -> Outcome | None:
        facts = facts_of(context)
        assert facts.extracted is not None
        for attachment in facts.extracted.attachments:
            read = FileRead(
                attachment.name,
                attachment.path,
                hashlib.sha256(attachment.data).hexdigest(),
                len(attachment.data),
            )
            try:
                read.documents = parse_in_child(attachment.name, attachment.data)
            except Refused as refusal:
                read.refusal = refusal.reason
                metrics.count_parse_failure(refusal.reason)
            convert_to_usd(read.documents, self._rates)
            facts.files.append(read)
        return None
