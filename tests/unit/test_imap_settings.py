"""IMAP configuration and the poller's small rules: mailbox URLs, the list of mailboxes, the
IDLE renewal bound, the backoff, and where a decided message goes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, load_settings
from ingest.imap import MailboxAddress, _uid_set
from ingest.imap_intake import IntakeRules
from ingest.imap_poller import backoff_delay
from store.states import Status


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STAX_"):
            monkeypatch.delenv(key)


def test_a_mailbox_url_names_server_user_and_folder() -> None:
    a = MailboxAddress.parse("imaps://imp%40acme.example:p%2Fss@Mail.Example.com/Invoices/2026")
    assert (a.tls, a.host, a.port, a.user, a.password) == (
        True,
        "mail.example.com",
        993,
        "imp@acme.example",
        "p/ss",
    )
    assert a.folder == "Invoices/2026"
    assert a.name == "imp@acme.example@mail.example.com/Invoices/2026"  # no password
    plain = MailboxAddress.parse("imap://u:p@127.0.0.1:1143")
    assert (plain.tls, plain.port, plain.folder) == (False, 1143, "INBOX")


@pytest.mark.parametrize("url", ["http://u:p@h/INBOX", "imap://h/INBOX", "imaps://u:p@/INBOX"])
def test_a_bad_mailbox_url_is_a_config_error(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAX_IMAP_URL", url)
    with pytest.raises(ConfigError, match="imap_url"):
        load_settings()
    with pytest.raises(ValueError):
        MailboxAddress.parse(url)


def test_mailboxes_come_from_the_url_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "stax.toml"
    toml.write_text(
        'imap_mailboxes = ["imaps://a:x@mail.example/INBOX", "imaps://b:y@mail.example/INBOX"]\n'
        'imap_start = "new"\nimap_processed_folder = "Done"\n'
    )
    monkeypatch.setenv("STAX_CONFIG", str(toml))
    monkeypatch.setenv("STAX_IMAP_URL", "imaps://a:x@mail.example/INBOX")
    s = load_settings()
    assert s.imap_urls == ("imaps://a:x@mail.example/INBOX", "imaps://b:y@mail.example/INBOX")
    assert (s.imap_start, s.imap_processed_folder, s.imap_failed_folder) == (
        "new",
        "Done",
        "Failed",
    )
    assert (s.imap_poll_seconds, s.imap_idle_seconds) == (300, 540)


def test_idle_is_renewed_at_most_every_ten_minutes() -> None:
    with pytest.raises(ValueError):
        Settings(imap_idle_seconds=601)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    low = [backoff_delay(n, cap=60, rng=lambda: 0.0) for n in range(1, 9)]
    high = [backoff_delay(n, cap=60, rng=lambda: 1.0) for n in range(1, 9)]
    assert high == [1, 2, 4, 8, 16, 32, 60, 60]
    assert low == [h / 2 for h in high]


def test_a_quarantined_import_goes_to_failed_and_one_in_flight_stays() -> None:
    rules = IntakeRules("Processed", "Failed", "all", 100, timedelta(seconds=1))
    assert rules.folder_for(Status.QUARANTINED) == "Failed"
    for decided in (Status.IMPORTED, Status.DUPLICATE, Status.REJECTED, Status.HELD):
        assert rules.folder_for(decided) == "Processed"
    for in_flight in (Status.RECEIVED, Status.PROCESSING, None):
        assert rules.folder_for(in_flight) is None


def test_uid_sets_are_compact() -> None:
    assert _uid_set([9, 1, 2, 3, 7, 10, 2]) == "1:3,7,9:10"
