"""Documents of an account: what is already known, and storing a message's documents once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from parsers.base import Document as ParsedDocument
from store.models import Attachment, Document, DocumentLine


@dataclass(frozen=True)
class Known:
    """An earlier document that a new one repeats."""

    document_id: int
    import_id: int
    same_content: bool


def content_fingerprint(document: ParsedDocument) -> str:
    """What makes two documents the same spend: everything parsed but the file's name and
    the conversion (a rate refreshed later must not make a re-sent invoice new)."""
    content = document.to_json()
    for key in ("file", "fx_rate", "fx_date", "warnings"):
        content.pop(key, None)
    for line in content["lines"]:
        line.pop("amount_usd", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_known(
    session: Session, account_id: int, document: ParsedDocument, file_sha256: str
) -> Known | None:
    """The stored document this one repeats: the same number for numbered documents (the
    invoice's identity), else the same file or the same content (usage exports)."""
    query = select(Document).where(Document.account_id == account_id)
    if document.number:
        query = query.where(Document.kind == document.kind, Document.number == document.number)
    else:
        fingerprint = content_fingerprint(document)
        query = query.where(
            (Document.file_sha256 == file_sha256) | (Document.content_sha256 == fingerprint)
        )
    earlier = session.scalars(query.order_by(Document.id).limit(1)).first()
    if earlier is None:
        return None
    same = earlier.content_sha256 == content_fingerprint(document)
    return Known(earlier.id, earlier.import_id, same)


def store_document(
    session: Session,
    import_id: int,
    account_id: int,
    attachment_id: int | None,
    document: ParsedDocument,
    file_sha256: str,
) -> int:
    row = Document(
        import_id=import_id,
        account_id=account_id,
        attachment_id=attachment_id,
        file_name=document.file,
        file_sha256=file_sha256,
        content_sha256=content_fingerprint(document),
        kind=document.kind,
        number=document.number,
        issue_date=document.issue_date,
        period_start=document.period_start,
        period_end=document.period_end,
        month=document.period_start.strftime("%Y-%m") if document.period_start else None,
        currency=document.currency,
        subtotal=document.subtotal,
        tax=document.tax,
        total=document.total,
        fx_rate=document.fx_rate,
        fx_date=document.fx_date,
        usd_total=sum((line.amount_usd or Decimal(0) for line in document.lines), Decimal(0)),
        warnings=list(document.warnings),
        lines=[DocumentLine(**_line_values(line)) for line in document.lines],
    )
    session.add(row)
    session.flush()
    return row.id


def store_attachment(session: Session, import_id: int, **values: Any) -> int:
    row = Attachment(import_id=import_id, **values)
    session.add(row)
    session.flush()
    return row.id


def _line_values(line: Any) -> dict[str, Any]:
    return {
        "description": line.description,
        "model": line.model,
        "model_id": line.model_id,
        "category": line.category,
        "usage": line.usage,
        "quantity": line.quantity,
        "unit": line.unit,
        "unit_price": line.unit_price,
        "amount": line.amount,
        "amount_usd": line.amount_usd,
    }


def documents_of_import(session: Session, import_id: int) -> list[Document]:
    return list(
        session.scalars(
            select(Document).where(Document.import_id == import_id).order_by(Document.id)
        ).all()
    )


def attachments_of_import(session: Session, import_id: int) -> list[Attachment]:
    return list(
        session.scalars(
            select(Attachment).where(Attachment.import_id == import_id).order_by(Attachment.id)
        ).all()
    )


def replace_document(session: Session, document_id: int) -> None:
    """A person approved a changed version: the stored one (and its lines) goes, so the
    spend is counted once, from the new version."""
    document = session.get(Document, document_id)
    if document is not None:
        session.delete(document)
        session.flush()


def drop_documents(session: Session, document_ids: Collection[int]) -> None:
    """Documents a person let go (rejected, or released and no longer read): their spend
    goes with them, and a later message with the same invoice is new again."""
    if document_ids:
        session.execute(delete(Document).where(Document.id.in_(list(document_ids))))


def clear_attachments(session: Session, import_id: int) -> None:
    session.execute(delete(Attachment).where(Attachment.import_id == import_id))
