"""The `stax-import` command line of CONTRACT.md: reads the arguments, then runs the command.

Kept light on purpose: parsing runs in children of a forkserver, and multiprocessing runs the
parent's main module again in each child before it parses anything (for `stax-import` and
`python -m ingest.cli` alike, this module). Were the service imported at the top of this module,
every file read would first import SQLAlchemy, Starlette and the rest: a second and more of CPU
per attachment. So the commands (`ingest.commands`) and the settings are imported only in
`main`, when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import NoReturn

from ingest.ages import parse_age
from ingest.usage import UsageError

# the `--status` choices: store.states.Status, spelled out so as not to import SQLAlchemy here
# (see above; tests/unit/test_cli_light.py keeps the two the same)
STATUSES = (
    "received",
    "processing",
    "imported",
    "duplicate",
    "rejected",
    "held",
    "quarantined",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="stax-import", description="Stax mail import service.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("serve", help="run the listeners, workers and scheduler").set_defaults(
        run="serve"
    )

    ingest = commands.add_parser("ingest", help="hand .eml files to the same door as SMTP")
    ingest.add_argument("files", nargs="+", metavar="FILE.eml")
    ingest.set_defaults(run="ingest")

    queue = commands.add_parser("queue", help="the ingest queue")
    queue.add_argument("--status", choices=STATUSES)
    queue.add_argument("--account", metavar="NAME", help="only this account's imports")
    queue.add_argument(
        "--older-than", type=_age, metavar="AGE", help="received more than AGE ago: 90m, 4h, 2d"
    )
    queue.add_argument("--limit", type=int, default=500)
    queue.add_argument("--json", action="store_true")
    queue.set_defaults(run="queue")

    replay = commands.add_parser(
        "replay",
        help="read stored mail again with the current parsers",
        description="Read the raw mail of the selected imports again with the current "
        "parsers and compare with what is stored. A changed import that counted nothing goes "
        "back to the queue; one that counted spend is held for a person. Every selector given "
        "must hold (a repeated one: any of its values); at least one is required.",
    )
    replay.add_argument(
        "--status", choices=STATUSES, action="append", default=[], help="repeat for several"
    )
    replay.add_argument(
        "--since", type=_day, metavar="YYYY-MM-DD", help="received on or after this day (UTC)"
    )
    replay.add_argument(
        "--until", type=_day, metavar="YYYY-MM-DD", help="received on or before this day (UTC)"
    )
    replay.add_argument(
        "--id", type=_import_id, action="append", default=[], metavar="ID", help="repeatable"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    replay.add_argument("--json", action="store_true", help="one JSON document on stdout")
    replay.set_defaults(run="replay")

    show = commands.add_parser("show", help="one import: envelope, history, documents")
    show.add_argument("id", type=_import_id, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run="show")

    for name, run, text in (
        ("retry", "retry", "retry a quarantined or rejected import"),
        ("release", "release", "approve a held import"),
    ):
        action = commands.add_parser(name, help=text)
        action.add_argument("id", type=_import_id, metavar="ID")
        action.set_defaults(run=run)
    rejecting = commands.add_parser("reject", help="reject an import; the reason is replied")
    rejecting.add_argument("id", type=_import_id, metavar="ID")
    rejecting.add_argument("--reason", required=True, metavar="TEXT")
    rejecting.set_defaults(run="reject")

    thread = commands.add_parser("thread", help="support: the whole conversation of an import")
    thread.add_argument("key", metavar="ID-or-Message-ID")
    thread.add_argument("--json", action="store_true")
    thread.set_defaults(run="thread")

    accounts = commands.add_parser("accounts", help="customer accounts and their senders")
    account_commands_ = accounts.add_subparsers(
        dest="accounts_command", required=True, parser_class=_Parser
    )
    add = account_commands_.add_parser("add", help="register an account; prints its address")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--sender", action="append", default=[], metavar="ADDR")
    add.add_argument("--domain", action="append", default=[], metavar="DOMAIN")
    add.set_defaults(run="accounts_add")
    listing = account_commands_.add_parser("list", help="the accounts and their addresses")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run="accounts_list")

    report = commands.add_parser("report", help="spend per month and model in USD")
    report.add_argument("--account", required=True, metavar="NAME")
    report.add_argument("--json", action="store_true")
    report.set_defaults(run="report")

    parse = commands.add_parser("parse", help="parse documents offline (no database, no mail)")
    parse.add_argument("files", nargs="+", metavar="FILE")
    parse.add_argument("--json", action="store_true", help="print the parse JSON")
    parse.set_defaults(run="parse")

    fx = commands.add_parser("fx", help="ECB exchange rates")
    fx_commands = fx.add_subparsers(dest="fx_command", required=True, parser_class=_Parser)
    fx_load = fx_commands.add_parser("load", help="install a newer ECB history file")
    fx_load.add_argument("file", metavar="FILE", help="eurofxref-hist.zip or .csv")
    fx_load.set_defaults(run="fx_load")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply pending migrations").set_defaults(
        run="db_upgrade"
    )
    return parser


def _import_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an import id (a number)")
    return int(text)


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _day(text: str) -> date:
    # date.fromisoformat alone would also take 20260801 and 2026-W31-6
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-08-01")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-08-01") from exc


def main(argv: Sequence[str] | None = None) -> int:
    from config.logging import configure_logging
    from config.settings import ConfigError, Settings, load_settings

    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        configure_logging(settings.log_level)
        from ingest import commands

        run: Callable[[Settings, argparse.Namespace], int] = getattr(commands, args.run)
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
