"""One Settings object, read from AUFRUF_* environment variables (see CONTRACT.md)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_DATABASE_FILE = "aufruf.db"


class SettingsError(ValueError):
    """A setting has a value aufruf cannot use; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def _networks(
    env: dict[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = env.get(name, "")
    nets = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {part!r} is not an IP address or network") from None
    return tuple(nets)


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DATABASE_FILE}"
    redis_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "aufruf@localhost"
    public_url: str | None = None
    secret_key: str = field(default="", repr=False)
    booking_rate_limit: int = 10
    pow_difficulty: int = 0
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_active_appointments_per_email: int = 3
    retention_days: int = 7
    reminder: str = "-1d 18:00"  # when reminders go out: days before and local time, or "off"
    site_texts: str | None = None  # a file with the texts of /imprint, /privacy, /accessibility

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        if path in ("", ":memory:"):
            return None
        return Path(path)

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, *, create_secret: bool = False
    ) -> Settings:
        """Read the AUFRUF_* variables. Without AUFRUF_SECRET_KEY a SQLite install keeps a
        generated key beside its database file when create_secret is set (the demo);
        otherwise the key is required."""
        env = dict(os.environ if env is None else env)
        database_url = env.get("AUFRUF_DATABASE_URL") or cls.database_url
        if database_url.startswith("sqlite:///"):
            database_url = "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
        if database_url.startswith(("postgresql://", "postgres://")):
            database_url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
        if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "AUFRUF_DATABASE_URL must be a SQLite file (sqlite:///path) "
                "or PostgreSQL (postgresql+asyncpg://…)"
            )
        settings = cls(
            database_url=database_url,
            redis_url=env.get("AUFRUF_REDIS_URL") or None,
            smtp_url=env.get("AUFRUF_SMTP_URL") or None,
            mail_from=env.get("AUFRUF_MAIL_FROM") or cls.mail_from,
            public_url=(env.get("AUFRUF_PUBLIC_URL") or "").rstrip("/") or None,
            secret_key=env.get("AUFRUF_SECRET_KEY", ""),
            booking_rate_limit=_int(env, "AUFRUF_BOOKING_RATE_LIMIT", 10),
            pow_difficulty=_int(env, "AUFRUF_POW_DIFFICULTY", 0),
            trusted_proxies=_networks(env, "AUFRUF_TRUSTED_PROXIES"),
            max_active_appointments_per_email=_int(env, "AUFRUF_MAX_ACTIVE_APPOINTMENTS", 3, 1),
            retention_days=_int(env, "AUFRUF_RETENTION_DAYS", 7),
            reminder=env.get("AUFRUF_REMINDER") or cls.reminder,
            site_texts=env.get("AUFRUF_SITE_TEXTS") or None,
        )
        _check_mail(settings)
        _check_site_texts(settings)
        if settings.secret_key:
            if len(settings.secret_key) < 32:
                raise SettingsError("AUFRUF_SECRET_KEY must be at least 32 characters long")
            return settings
        if create_secret and settings.is_sqlite:
            return settings.with_secret(_stored_secret(settings))
        raise SettingsError(
            "AUFRUF_SECRET_KEY is not set: it derives the links in e-mails and signs sessions. "
            "Create one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )

    def with_secret(self, key: str) -> Settings:
        return replace(self, secret_key=key)


def _check_mail(settings: Settings) -> None:
    from urllib.parse import urlsplit

    from aufruf.notifications.logic import parse_reminder_rule

    if settings.smtp_url:
        parts = urlsplit(settings.smtp_url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError(
                "AUFRUF_SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465"
            )
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            raise SettingsError("AUFRUF_SMTP_URL has a port that is not a number") from None
    try:
        parse_reminder_rule(settings.reminder)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _check_site_texts(settings: Settings) -> None:
    from aufruf.booking.legal import SiteTextsError, site_texts

    try:
        site_texts(settings.site_texts)
    except SiteTextsError as exc:
        raise SettingsError(f"AUFRUF_SITE_TEXTS: {exc}") from None


def _stored_secret(settings: Settings) -> str:
    db_path = settings.sqlite_path or Path(DEFAULT_DATABASE_FILE)
    key_file = db_path.with_name(db_path.name + ".secret")
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(48)
    key_file.touch(mode=0o600)
    key_file.write_text(key + "\n")
    return key
