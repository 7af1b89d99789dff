"""Configuration: environment over the STAX_CONFIG file over defaults, as CONTRACT.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STAX_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_contract_defaults() -> None:
    s = load_settings()
    assert s.data_dir == Path("./var")
    assert s.database_url == "sqlite:///var/stax-import.db"
    assert (s.import_address, s.smtp_host, s.smtp_port) == (
        "import@stax.localhost",
        "127.0.0.1",
        2525,
    )
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.ops_password is None and s.imap_url is None and s.outbound_smtp_url is None
    assert s.sender_auth == "none" and s.authserv_id is None
    assert s.support_address == "support@stax.localhost"
    assert s.ops_address == "ops@stax.localhost"
    assert s.sla_calendar == "FR"
    assert s.smtp_max_message_bytes == 32 * 1024 * 1024
    assert s.smtp_max_sessions == 50


def test_the_database_follows_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAX_DATA_DIR", "/srv/stax")
    assert load_settings().database_url == "sqlite:////srv/stax/stax-import.db"


def test_environment_wins_over_file_which_wins_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "stax.toml"
    config.write_text('smtp_port = 2626\nimport_address = "in@file.example"\nsla_calendar = "US"\n')
    monkeypatch.setenv("STAX_CONFIG", str(config))
    monkeypatch.setenv("STAX_SMTP_PORT", "2727")
    s = load_settings()
    assert s.smtp_port == 2727  # environment
    assert s.import_address == "in@file.example"  # file
    assert s.sla_calendar == "US"  # file
    assert s.smtp_host == "127.0.0.1"  # default


def test_a_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAX_CONFIG", "/nonexistent/stax.toml")
    with pytest.raises(ConfigError, match=r"/nonexistent/stax\.toml"):
        load_settings()


def test_a_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAX_SENDER_AUTH", "maybe")
    with pytest.raises(ConfigError, match="sender_auth"):
        load_settings()
