"""`accounts add`, `accounts list` and `report`: customers, their senders, their spend."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from sqlalchemy.exc import IntegrityError

from ingest.app import Services
from ingest.usage import UsageError
from store.accounts import add_account, list_accounts
from store.models import Account
from store.reports import UnknownAccount, spend_report

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^@?[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)


def personal_address(import_address: str, token: str) -> str:
    local, _, domain = import_address.partition("@")
    return f"{local}+{token}@{domain}"


def add(services: Services, name: str, senders: list[str], domains: list[str]) -> int:
    if not senders and not domains:
        raise UsageError(
            "an account needs at least one sender",
            "add --sender someone@example.com or --domain example.com",
        )
    bad = [s for s in senders if not _ADDRESS.match(s)] + [
        d for d in domains if not _DOMAIN.match(d)
    ]
    if bad:
        raise UsageError(
            f"not an address or domain: {', '.join(bad)}",
            "use --sender someone@example.com or --domain example.com",
        )
    try:
        with services.db.write() as session:
            account = add_account(session, name, senders, domains)
            token = account.token
    except IntegrityError as exc:
        raise UsageError(
            f"an account named {name!r} exists already", "stax-import accounts list shows them"
        ) from exc
    print(personal_address(services.settings.import_address, token))
    return 0


def show_list(services: Services, as_json: bool) -> int:
    with services.db.read() as session:
        accounts = [
            _account_json(a, services.settings.import_address) for a in list_accounts(session)
        ]
    if as_json:
        _print_json({"accounts": accounts})
        return 0
    for a in accounts:
        print(
            f"{a['name']}\t{a['import_address']}\t"
            f"senders: {', '.join(a['senders']) or '-'}\tdomains: "
            f"{', '.join(a['domains']) or '-'}"
        )
    if not accounts:
        print("(no accounts: stax-import accounts add NAME --sender ADDRESS)")
    return 0


def report(services: Services, account: str, as_json: bool) -> int:
    with services.db.read() as session:
        try:
            document = spend_report(session, account)
        except UnknownAccount as exc:
            raise UsageError(f"no account {account!r}", "stax-import accounts list") from exc
    if as_json:
        _print_json(document)
        return 0
    print(f"{document['account']}: spend in USD")
    for month in document["months"]:
        change = (
            f"  ({month['change_usd']:+} USD, {month['change_pct']} % on {month['previous_month']})"
            if month["change_usd"] is not None
            else ""
        )
        print(f"{month['month']}  {month['total_usd']:>12}{change}")
        for model in month["models"]:
            print(
                f"    {model['model']:<28} {model['amount_usd']:>12}  "
                f"in {model['input_tokens']:,} / out {model['output_tokens']:,} tokens"
            )
    if not document["months"]:
        print("(nothing imported yet)")
    return 0


def _account_json(account: Account, import_address: str) -> dict[str, Any]:
    return {
        "name": account.name,
        "import_address": personal_address(import_address, account.token),
        "senders": [s.value for s in account.senders if s.kind == "address"],
        "domains": [s.value for s in account.senders if s.kind == "domain"],
    }


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
