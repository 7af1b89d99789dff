"""The service's settings: environment over `STAX_CONFIG` TOML over defaults, read once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the service; CONTRACT.md names the first block, the rest are tuning."""

    model_config = SettingsConfigDict(env_prefix="STAX_", extra="ignore", frozen=True)

    # --- CONTRACT.md
    data_dir: Path = Path("./var")
    database_url: str = ""  # derived from data_dir when empty
    import_address: str = "import@stax.localhost"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    ops_password: str | None = None
    imap_url: str | None = None
    outbound_smtp_url: str | None = None
    sender_auth: Literal["none", "authres", "dkim"] = "none"
    authserv_id: str | None = None
    support_address: str = "support@stax.localhost"
    ops_address: str = "ops@stax.localhost"
    sla_calendar: str = "FR"

    # --- intake limits (RELIABILITY.md)
    smtp_max_message_bytes: int = Field(default=32 * MIB, gt=0)
    smtp_max_sessions: int = Field(default=50, gt=0)
    smtp_session_timeout_seconds: float = Field(default=300, gt=0)
    max_header_bytes: int = Field(default=100 * 1024, gt=0)

    # --- workers
    workers: int = Field(default=2, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=30.0, ge=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    worker_idle_poll_seconds: float = Field(default=1.0, gt=0)

    # --- IMAP poller (RELIABILITY.md, IMAP): STAX_IMAP_URL above, and more in the TOML file
    imap_mailboxes: tuple[str, ...] = ()  # imap_mailboxes = ["imaps://user:pass@host/INBOX"]
    imap_processed_folder: str = Field(default="Processed", min_length=1)
    imap_failed_folder: str = Field(default="Failed", min_length=1)  # quarantined imports
    imap_start: Literal["all", "new"] = "all"  # first start: what is there, or from now on
    imap_poll_seconds: float = Field(default=300, gt=0)  # the full poll, IDLE or not
    imap_idle: bool = True  # where the server offers IDLE
    imap_idle_seconds: float = Field(default=540, gt=0, le=600)  # servers drop IDLE at 29 min
    imap_timeout_seconds: float = Field(default=60, gt=0)  # every socket call
    imap_backoff_max_seconds: float = Field(default=300, gt=0)  # reconnect backoff cap
    imap_lease_seconds: float = Field(default=120, gt=0)  # a poller's claim on a message
    imap_ca_file: Path | None = None  # trust this CA (PEM) for imaps://, besides the system's
    imap_pause_before_move_seconds: float = Field(default=0, ge=0)  # test hook: crash window

    # --- scheduled jobs (issue 6)
    sla_warn_fraction: float = Field(default=0.75, gt=0, lt=1)
    sla_watch_seconds: float = Field(default=60, gt=0)
    raw_retention_days: int = Field(default=90, ge=1)
    fx_stale_days: int = Field(default=10, ge=1)
    mailbox_down_minutes: float = Field(default=15, gt=0)

    log_level: str = "INFO"

    @field_validator("imap_url", "imap_mailboxes")
    @classmethod
    def _check_imap_urls(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        for url in (value,) if isinstance(value, str) else value or ():
            parts = urlsplit(url)
            if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
                raise ValueError("an IMAP mailbox is imap[s]://user:pass@host[:port][/FOLDER]")
        return value

    @model_validator(mode="after")
    def _derive_database_url(self) -> Settings:
        if not self.database_url:
            url = f"sqlite:///{self.data_dir / 'stax-import.db'}"
            object.__setattr__(self, "database_url", url)
        return self

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def imap_urls(self) -> tuple[str, ...]:
        """Every mailbox to poll: STAX_IMAP_URL, then the file's list, each once."""
        urls = ((self.imap_url,) if self.imap_url else ()) + self.imap_mailboxes
        return tuple(dict.fromkeys(urls))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get("STAX_CONFIG")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


def load_settings() -> Settings:
    """Read the configuration once; the caller passes the result down."""
    toml_path = os.environ.get("STAX_CONFIG")
    if toml_path and not Path(toml_path).is_file():
        raise ConfigError(f"STAX_CONFIG names {toml_path}, which is not a readable file")
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigError(_first_error(exc)) from exc


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"setting {where or '?'}: {first.get('msg', 'invalid')}"
    return str(exc)
