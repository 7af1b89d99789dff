"""What each `stax-import` command does, once `ingest.cli` has read the command line.

Imported by `ingest.cli.main` only when a command runs, never at the top of `ingest.cli`: see
there why."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings
from ingest import account_commands, app, ops_actions
from ingest.accept import Envelope
from ingest.app import bootstrap, default_pipeline
from ingest.offline_commands import load_fx, parse_files
from ingest.progress import Progress
from ingest.replay import replay as replay_imports
from ingest.replay import replay_table, summary
from ingest.threads import conversation, resolve_import
from ingest.usage import UsageError
from ingest.views import detail_text, import_detail, iso, queue_entry, queue_table
from store.accounts import account_named
from store.db import open_database
from store.documents import attachments_of_import, documents_of_import
from store.migrate import upgrade
from store.outbox import replies_of_import
from store.queue import get_import, list_imports
from store.queue_page import QueueFilter
from store.replays import ReplaySelection, selected_imports, unknown_ids
from store.types import utcnow


def serve(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    asyncio.run(app.serve(services, default_pipeline(services)))
    return 0


def ingest(settings: Settings, args: argparse.Namespace) -> int:
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


def queue(settings: Settings, args: argparse.Namespace) -> int:
    services = bootstrap(settings)
    now = utcnow()
    wanted = QueueFilter(
        args.status,
        args.account,
        now - args.older_than if args.older_than is not None else None,
    )
    with services.db.read() as session:
        if args.account is not None and account_named(session, args.account) is None:
            raise UsageError(f"no account {args.account!r}", "stax-import accounts list")
        entries = [
            queue_entry(i, settings.sla_calendar)
            for i in list_imports(session, wanted, limit=args.limit)
        ]
    if args.json:
        print_json({"imports": entries})
    else:
        print(queue_table(entries, now))
    return 0


def replay(settings: Settings, args: argparse.Namespace) -> int:
    selection = ReplaySelection(tuple(args.status), args.since, args.until, tuple(args.id))
    if selection.empty:  # nobody replays the whole database by accident
        raise UsageError(
            "replay needs a selector", "give --status, --since, --until or --id; see --help"
        )
    if args.since and args.until and args.since > args.until:
        raise UsageError("--since is after --until", "the days are inclusive, since first")
    services = bootstrap(settings)
    with services.db.read() as session:
        if missing := unknown_ids(session, selection.ids):
            names = ", ".join(str(i) for i in missing)
            raise UsageError(f"no import {names}", "stax-import queue lists them")
        import_ids = selected_imports(session, selection)
    progress = Progress("replay", len(import_ids), sys.stderr)
    try:
        results = replay_imports(services, import_ids, args.dry_run, progress.show)
    finally:
        progress.close()
    if args.json:
        print_json({"dry_run": args.dry_run, "imports": [r.to_json() for r in results]})
        return 0
    if results:
        print(replay_table(results))
    print(summary(results, args.dry_run))
    return 0


def show(settings: Settings, args: argparse.Namespace) -> int:
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
        print_json(detail)
    else:
        print(detail_text(detail))
    return 0


def retry(settings: Settings, args: argparse.Namespace) -> int:
    imported = ops_actions.retry(bootstrap(settings), args.id)
    print(f"import {imported.id} is received again: a worker will take it")
    return 0


def release(settings: Settings, args: argparse.Namespace) -> int:
    released = ops_actions.release(bootstrap(settings), args.id)
    print(f"import {released.id} released: a worker will import it")
    return 0


def reject(settings: Settings, args: argparse.Namespace) -> int:
    ops_actions.reject(bootstrap(settings), args.id, args.reason)
    print(f"import {args.id} rejected; the customer is told why")
    return 0


def thread(settings: Settings, args: argparse.Namespace) -> int:
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
        print_json({"import": import_id, "thread": entries})
        return 0
    for e in entries:
        who = e.get("from") or e.get("to") or "-"
        what = e.get("subject") or e.get("note") or ""
        print(
            f"{iso(e['at'])}  {e['kind']:<15} import {e['import_id']:<5} {e['status']:<10} "
            f"{who}  {what}"
        )
    return 0


def db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.database_url)
    upgrade(db)
    db.dispose()
    print("database is up to date")
    return 0


def accounts_add(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.add(bootstrap(settings), args.name, args.sender, args.domain)


def accounts_list(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.show_list(bootstrap(settings), args.json)


def report(settings: Settings, args: argparse.Namespace) -> int:
    return account_commands.report(bootstrap(settings), args.account, args.json)


def parse(settings: Settings, args: argparse.Namespace) -> int:
    return parse_files(args.files, args.json, settings.data_dir)


def fx_load(settings: Settings, args: argparse.Namespace) -> int:
    return load_fx(args.file, settings.data_dir)


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
