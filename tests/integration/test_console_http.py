"""The ops console over real HTTP on loopback: health, metrics, the password, CSRF, the
loopback rule, the queue's filters and pages, and how fast 10,000 imports render."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from config.settings import ConfigError, Settings
from ingest import metrics
from ingest.app import Services, bootstrap
from ingest.console import make_console
from ingest.console_auth import check_console_binding
from support.console import ConsoleClient, served
from support.databases import PG_ADMIN
from support.importing import statuses
from support.queue_rows import Row, add_imports
from support.service import free_port, settings_for

METRIC_NAMES = (
    "stax_imports_total",
    "stax_queue_depth",
    "stax_oldest_unprocessed_seconds",
    "stax_sla_breaches_total",
    "stax_sla_overdue_imports",
    "stax_parse_failures_total",
    "stax_intake_latency_seconds",
    "stax_reply_latency_seconds",
    "stax_database_up",
    "stax_outbox_mail",
)


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    running = bootstrap(settings_for(database_url, tmp_path / "data"))
    yield running
    running.db.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[ConsoleClient]:
    with served(make_console(services)) as port:
        yield ConsoleClient(port)


def ids_on(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page)]


def link(page: str, rel: str) -> str:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', page)
    assert found, f"no {rel} link"
    return found[1].replace("&amp;", "&")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found[1]


def test_healthz_is_ok_while_the_database_answers_and_503_once_it_is_gone(
    services: Services, client: ConsoleClient, database_url: str
) -> None:
    answer = client.get("/healthz")
    assert (answer.status, answer.text) == (200, '{"status":"ok"}')

    make_the_database_go_away(services, database_url)

    assert client.get("/healthz").status == 503
    page = client.get("/")  # the console says so rather than failing with a trace
    assert page.status == 503
    assert "The database does not answer" in page.text
    scrape = client.get("/metrics")  # the process's own counts are still served
    assert scrape.status == 200
    assert "stax_database_up 0.0" in scrape.text


def make_the_database_go_away(services: Services, database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        shutil.rmtree(Path(url.database).parent)  # a new connection cannot open the file
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
    services.db.dispose()


def test_metrics_name_every_promised_series_and_count_the_queue(
    services: Services, client: ConsoleClient
) -> None:
    long_ago = timedelta(days=10)
    add_imports(
        services.db,
        [Row("received", age=long_ago), Row("received"), Row("held", reason="a conflict")],
    )
    metrics.count_parse_failure("scan-12.pdf: 'scan-12.pdf' has no text layer on 3 pages")

    scrape = client.get("/metrics")

    assert scrape.status == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in scrape.text, name
    assert 'stax_queue_depth{status="received"} 2.0' in scrape.text
    assert 'stax_queue_depth{status="held"} 1.0' in scrape.text
    assert 'stax_imports_total{status="received"} 2.0' in scrape.text
    assert "stax_sla_overdue_imports 1.0" in scrape.text  # the one ten days old
    oldest = re.search(r"^stax_oldest_unprocessed_seconds (\S+)$", scrape.text, re.M)
    assert oldest and float(oldest[1]) >= long_ago.total_seconds()
    # a reason's numbers and quoted names fold, so one kind of failure is one series
    assert 'reason="scan-N.pdf: … has no text layer on N pages"' in scrape.text
    print(f"\n/metrics: {len(scrape.text)} bytes")


def test_a_form_without_the_session_token_is_refused(
    services: Services, client: ConsoleClient
) -> None:
    [held] = add_imports(services.db, [Row("held", reason="a conflict")])
    fields = {"reason": "cancelled"}

    assert client.post(f"/imports/{held}/reject", fields).status == 403  # no cookie, no token
    page = client.get(f"/imports/{held}")  # now the session has its cookie
    token = csrf_of(page.text)
    assert client.post(f"/imports/{held}/reject", fields).status == 403  # cookie, no field
    forged = {**fields, "csrf": token[:-4] + "0000"}
    assert client.post(f"/imports/{held}/reject", forged).status == 403
    stranger = ConsoleClient(client.port)  # another session with a token of its own
    stranger.get("/")
    assert stranger.post(f"/imports/{held}/reject", {**fields, "csrf": token}).status == 403
    assert statuses(services.db) == ["held"]

    done = client.post(f"/imports/{held}/reject", {**fields, "csrf": token})

    assert done.status == 303
    assert done.headers["location"] == f"/imports/{held}?done=reject"
    assert statuses(services.db) == ["rejected"]


def test_an_action_the_status_does_not_allow_is_shown_not_done(
    services: Services, client: ConsoleClient
) -> None:
    [imported] = add_imports(services.db, [Row("imported")])
    page = client.get(f"/imports/{imported}")  # no buttons, but the session gets its token
    assert 'id="release"' not in page.text

    answer = client.post(f"/imports/{imported}/release", {"csrf": client.cookies["stax_csrf"]})

    assert answer.status == 409
    assert "only a held import is released" in answer.text
    assert statuses(services.db) == ["imported"]


def test_a_password_is_asked_for_everything_but_healthz(services: Services) -> None:
    settings = services.settings.model_copy(update={"ops_password": "s3cret-ops"})
    guarded = Services(settings, services.db, services.door, services.recipients, services.rates)
    with served(make_console(guarded)) as port:
        anonymous, wrong = ConsoleClient(port), ConsoleClient(port, password="nope")
        for path in ("/", "/metrics", "/imports/1"):
            refused = anonymous.get(path)
            assert refused.status == 401, path
            assert refused.headers["www-authenticate"].startswith("Basic realm=")
            assert wrong.get(path).status == 401, path
        assert anonymous.get("/healthz").status == 200
        assert ConsoleClient(port, password="s3cret-ops").get("/").status == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.0.2.10", "ops.example.com"])
def test_a_public_address_without_a_password_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="STAX_OPS_PASSWORD"):
        check_console_binding(Settings(http_host=host))
    check_console_binding(Settings(http_host=host, ops_password="s3cret-ops"))


def test_serve_refuses_to_start_on_a_public_address_without_a_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(
        STAX_DATA_DIR=str(tmp_path / "data"),
        STAX_SMTP_PORT=str(free_port()),
        STAX_HTTP_HOST="0.0.0.0",
        STAX_HTTP_PORT=str(free_port()),
    )
    try:
        run = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("serve kept running on 0.0.0.0 without STAX_OPS_PASSWORD")
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: STAX_HTTP_HOST=0.0.0.0 is not a loopback address")
    assert "STAX_OPS_PASSWORD" in last


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_password(host: str) -> None:
    check_console_binding(Settings(http_host=host))


def test_the_queue_pages_newest_first_and_filters(
    services: Services, client: ConsoleClient
) -> None:
    rows = [Row("imported", timedelta(hours=200 - i, minutes=30), "acme") for i in range(100)]
    rows += [Row("held", age=timedelta(hours=30), account="globex", reason="a conflict")] * 20
    ids = add_imports(services.db, rows)
    newest_first = ids[::-1]

    first = client.get("/")
    second = client.get(link(first.text, "next"))
    third = client.get(link(second.text, "next"))
    back = client.get(link(third.text, "prev"))

    assert ids_on(first.text) == newest_first[:50]
    assert ids_on(second.text) == newest_first[50:100]
    assert ids_on(third.text) == newest_first[100:]
    assert 'rel="next"' not in third.text
    assert ids_on(back.text) == newest_first[50:100]
    assert 'data-status="held" class="attention">held<b>20</b>' in first.text
    assert ids_on(client.get("/?status=held").text) == newest_first[:20]
    assert len(ids_on(client.get("/?status=open&account=globex").text)) == 20
    assert ids_on(client.get("/?account=acme&size=10").text) == newest_first[20:30]
    assert ids_on(client.get("/?age=7d").text) == ids[:33][::-1]  # received > 168 h ago
    assert client.get("/?status=lost").status == 400
    assert client.get("/?age=soon").status == 400


@pytest.mark.parametrize(
    ("hours", "css", "text"),
    [(2, "ok", "22h00m left"), (20, "warn", "4h00m left"), (25, "late", "late by 1h00m")],
)
def test_the_sla_time_left_turns_amber_then_red_as_it_runs_out(
    services: Services, hours: int, css: str, text: str
) -> None:
    # Tuesday 2026-11-03 09:00 in Paris: due Wednesday 09:00 (08:00 UTC); amber from 75 %
    arrived = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    [fresh] = add_imports(services.db, [Row("received", age=timedelta(0))], now=arrived)
    now = arrived + timedelta(hours=hours)

    with served(make_console(services, clock=lambda: now)) as port:
        client = ConsoleClient(port)
        detail, queue = client.get(f"/imports/{fresh}").text, client.get("/").text

    assert f'<span class="sla {css}">{text}</span>' in detail
    assert f'<span class="sla {css}" title="due 2026-11-04 08:00 UTC">{text}</span>' in queue


@pytest.mark.slow
def test_ten_thousand_imports_are_paged_fifty_at_a_time(
    services: Services, client: ConsoleClient
) -> None:
    """Every filter pages; how fast is benchmarks/console.py's to say (docs/benchmarks.md)."""
    statuses_cycle = ["imported"] * 6 + ["duplicate", "rejected", "held", "quarantined", "received"]
    add_imports(
        services.db,
        [
            Row(
                statuses_cycle[i % len(statuses_cycle)],
                age=timedelta(minutes=10_000 - i),
                account=f"account-{i % 40}",
            )
            for i in range(10_000)
        ],
    )
    for path in ("/", "/?status=held", "/?account=account-7", "/?age=3d"):
        answer = client.get(path)
        assert answer.status == 200 and len(ids_on(answer.text)) == 50, path
    deep = client.get("/?before=200")
    assert deep.status == 200 and ids_on(deep.text) == list(range(199, 149, -1))


def test_an_import_page_shows_its_thread_when_the_console_has_a_thread_view(
    services: Services,
) -> None:
    [first, answer] = add_imports(services.db, [Row("imported"), Row("imported")])
    at = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)

    def conversation(session: object, import_id: int) -> list[dict[str, object]]:
        return [
            {
                "at": at,
                "kind": "inbound",
                "import_id": first,
                "from": "a@x",
                "subject": "Mistral import",
            },
            {
                "at": at,
                "kind": "reply",
                "import_id": first,
                "to": "a@x",
                "status": "sent",
                "note": None,
            },
            {
                "at": at,
                "kind": "inbound",
                "import_id": answer,
                "from": "a@x",
                "subject": "Re: <b>?",
            },
        ]

    with served(make_console(services, thread=conversation)) as port:
        page = ConsoleClient(port).get(f"/imports/{answer}").text
    with served(make_console(services)) as port:
        plain = ConsoleClient(port).get(f"/imports/{answer}").text

    assert '<table id="thread">' in page and '<table id="thread">' not in plain
    assert f'<a href="/imports/{first}">{first}</a>' in page
    assert "Re: &lt;b&gt;?" in page  # what came in a message is escaped
    assert page.count('<tr class="this">') == 1
