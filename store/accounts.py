"""Customer accounts, their allowed senders, and their secret plus-address tokens."""

from __future__ import annotations

import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from store.models import Account, AccountSender

TOKEN_BYTES = 16  # 128 bits, as RELIABILITY.md asks


def new_token() -> str:
    # hex, not urlsafe base64: some MTAs fold the local part to lower case
    return secrets.token_hex(TOKEN_BYTES)


def add_account(session: Session, name: str, senders: list[str], domains: list[str]) -> Account:
    account = Account(name=name, token=new_token())
    account.senders = [AccountSender(kind="address", value=s.lower()) for s in senders] + [
        AccountSender(kind="domain", value=d.lower().lstrip("@")) for d in domains
    ]
    session.add(account)
    session.flush()
    return account


def list_accounts(session: Session) -> list[Account]:
    return list(
        session.scalars(
            select(Account).options(selectinload(Account.senders)).order_by(Account.name)
        ).all()
    )


def account_named(session: Session, name: str) -> Account | None:
    return session.scalar(select(Account).where(Account.name == name))


def account_for_token(session: Session, token: str) -> Account | None:
    """The account whose token this is, compared in constant time."""
    for account in session.scalars(select(Account)).all():
        if hmac.compare_digest(account.token.encode(), token.lower().encode()):
            return account
    return None


def accounts_for_sender(session: Session, address: str) -> list[Account]:
    """The accounts that registered this address, or else its domain."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    for kind, value in (("address", address), ("domain", domain)):
        found = session.scalars(
            select(Account)
            .join(AccountSender)
            .where(AccountSender.kind == kind, AccountSender.value == value)
            .order_by(Account.id)
        ).all()
        if found:
            return list(found)
    return []
