"""The `stax-import` command line of CONTRACT.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from config.logging import configure_logging
from config.settings import ConfigError, Settings, load_settings
from ingest import account_commands, ops_actions
from ingest.accept import Envelope
from ingest.app import bootstrap, default_pipeline, serve
from ingest.offline_commands import load_fx, parse_files
from ingest.threads import conversation, resolve_import
from ingest.usage import UsageError
from ingest.views import detail_text, import_detail, iso, queue_entry, queue_table
from store.db import open_database
from store.documents import attachments_of_import, documents_of_import
from store.migrate import upgrade
from store.outbox import replies_of_import
from store.queue import get_import, list_imports
from store.states import Status
from store.types import utcnow


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see {self.prog} --help")


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    asyncio.run(serve(services, default_pipeline(services)))
    return 0


def _cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    failed = False
    for name in args.files:
        path = Path(name)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            print(f"error: {name}: {exc.strerror or exc} (check the path)", file=sys.stderr)
            failed = True
            continue
        accepted = services.door.accept(raw, "cli", Envelope("", ()))
        note = "" if accepted.created else "  (already stored)"
        print(f"{accepted.import_id}\t{accepted.status.value}\t{name}{note}")
    return 2 if failed else 0


def _cmd_queue(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    status = Status(args.status) if args.status else None
    with services.db.read() as session:
        entries = [
            queue_entry(i, settings.sla_calendar)
            for i in list_imports(session, status, limit=args.limit)
        ]
    if args.json:
        _print_json({"imports": entries})
    else:
        print(queue_table(entries, utcnow()))
    return 0


def _cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    with services.db.read() as session:
        import_ = get_import(session, args.id)
        if import_ is None:
            raise UsageError(f"no import {args.id}", "stax-import queue lists them")
        detail = import_detail(
            import_,
            settings.sla_calendar,
            attachments_of_import(session, import_.id),
            documents_of_import(session, import_.id),
            replies_of_import(session, import_.id),
        )
    if args.json:
        _print_json(detail)
    else:
        print(detail_text(detail))
    return 0


def _cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    imported = ops_actions.retry(bootstrap(settings), args.id)
    print(f"import {imported.id} is received again: a worker will take it")
    return 0


def _cmd_release(settings: Settings, args: argparse.Namespace) -> int:
    released = ops_actions.release(bootstrap(settings), args.id)
    print(f"import {released.id} released: a worker will import it")
    return 0


def _cmd_reject(settings: Settings, args: argparse.Namespace) -> int:
    ops_actions.reject(bootstrap(settings), args.id, args.reason)
    print(f"import {args.id} rejected; the customer is told why")
    return 0


def _cmd_thread(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    with services.db.read() as session:
        import_id = resolve_import(session, args.key)
        if import_id is None:
            raise UsageError(
                f"no import or message {args.key}",
                "give an import id or a Message-ID in <angle brackets>",
            )
        entries = conversation(session, import_id)
    if args.json:
        for entry in entries:
            entry["at"] = iso(entry["at"])
        _print_json({"import": import_id, "thread": entries})
        return 0
    for e in entries:
        who = e.get("from") or e.get("to") or "-"
        what = e.get("subject") or e.get("note") or ""
        print(
            f"{iso(e['at'])}  {e['kind']:<15} import {e['import_id']:<5} {e['status']:<10} "
            f"{who}  {what}"
        )
    return 0


def _cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    upgrade(db)
    db.dispose()
    print("database is up to date")
    return 0


def _cmd_accounts_add(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.add(bootstrap(settings), args.name, args.sender, args.domain)


def _cmd_accounts_list(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.show_list(bootstrap(settings), args.json)


def _cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.report(bootstrap(settings), args.account, args.json)


def _cmd_parse(settings: Settings, args: argparse.Namespace) -> int:
    return parse_files(args.files, args.json, settings.data_dir)


def _cmd_fx_load(settings: Settings, args: argparse.Namespace) -> int:
    return load_fx(args.file, settings.data_dir)


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stax-import", description="Stax mail import service.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("serve", help="run the listeners, workers and scheduler").set_defaults(
        run=_cmd_serve
    )

    ingest = commands.add_parser("ingest", help="hand .eml files to the same door as SMTP")
    ingest.add_argument("files", nargs="+", metavar="FILE.eml")
    ingest.set_defaults(run=_cmd_ingest)

    queue = commands.add_parser("queue", help="the ingest queue")
    queue.add_argument("--status", choices=[s.value for s in Status])
    queue.add_argument("--limit", type=int, default=500)
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(run=_cmd_queue)

    show = commands.add_parser("show", help="one import: envelope, history, documents")
    show.add_argument("id", type=_import_id, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_cmd_show)

    for name, run, text in (
        ("retry", _cmd_retry, "retry a quarantined or rejected import"),
        ("release", _cmd_release, "approve a held import"),
    ):
        action = commands.add_parser(name, help=text)
        action.add_argument("id", type=_import_id, metavar="ID")
        action.set_defaults(run=run)
    rejecting = commands.add_parser("reject", help="reject an import; the reason is replied")
    rejecting.add_argument("id", type=_import_id, metavar="ID")
    rejecting.add_argument("--reason", required=True, metavar="TEXT")
    rejecting.set_defaults(run=_cmd_reject)

    thread = commands.add_parser("thread", help="support: the whole conversation of an import")
    thread.add_argument("key", metavar="ID-or-Message-ID")
    thread.add_argument("--json", action="store_true")
    thread.set_defaults(run=_cmd_thread)

    accounts = commands.add_parser("accounts", help="customer accounts and their senders")
    account_commands_ = accounts.add_subparsers(
        dest="accounts_command", required=True, parser_class=_Parser
    )
    add = account_commands_.add_parser("add", help="register an account; prints its address")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--sender", action="append", default=[], metavar="ADDR")
    add.add_argument("--domain", action="append", default=[], metavar="DOMAIN")
    add.set_defaults(run=_cmd_accounts_add)
    listing = account_commands_.add_parser("list", help="the accounts and their addresses")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_cmd_accounts_list)

    report = commands.add_parser("report", help="spend per month and model in USD")
    report.add_argument("--account", required=True, metavar="NAME")
    report.add_argument("--json", action="store_true")
    report.set_defaults(run=_cmd_report)

    parse = commands.add_parser("parse", help="parse documents offline (no database, no mail)")
    parse.add_argument("files", nargs="+", metavar="FILE")
    parse.add_argument("--json", action="store_true", help="print the parse JSON")
    parse.set_defaults(run=_cmd_parse)

    fx = commands.add_parser("fx", help="ECB exchange rates")
    fx_commands = fx.add_subparsers(dest="fx_command", required=True, parser_class=_Parser)
    fx_load = fx_commands.add_parser("load", help="install a newer ECB history file")
    fx_load.add_argument("file", metavar="FILE", help="eurofxref-hist.zip or .csv")
    fx_load.set_defaults(run=_cmd_fx_load)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply pending migrations").set_defaults(
        run=_cmd_db_upgrade
    )
    return parser


def _import_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an import id (a number)")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        configure_logging(settings.log_level)
        run: Callable[[Settings, argparse.Namespace], int] = args.run
        return run(settings, args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc} (check the STAX_* variables and STAX_CONFIG)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(
            f"error: internal fault: {type(exc).__name__}: {exc} "
            "(see the log; report it if it persists)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
