"""Settings come from AUFRUF_* variables and say clearly what is wrong with one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aufruf.settings import Settings, SettingsError

KEY = "k" * 40


def test_defaults_are_the_embedded_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({}, create_secret=True)
    assert settings.database_url == "sqlite+aiosqlite:///aufruf.db"
    assert settings.booking_rate_limit == 10
    assert settings.pow_difficulty == 0
    assert settings.redis_url is None
    # the generated key is kept beside the database, so links stay valid across restarts
    assert Settings.from_env({}, create_secret=True).secret_key == settings.secret_key
    assert (tmp_path / "aufruf.db.secret").stat().st_mode & 0o077 == 0


def test_postgres_urls_get_the_async_driver():
    env = {"AUFRUF_DATABASE_URL": "postgresql://u@h/db", "AUFRUF_SECRET_KEY": KEY}
    assert Settings.from_env(env).database_url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUFRUF_BOOKING_RATE_LIMIT": "ten"}, "AUFRUF_BOOKING_RATE_LIMIT"),
        ({"AUFRUF_BOOKING_RATE_LIMIT": "-1"}, "AUFRUF_BOOKING_RATE_LIMIT"),
        ({"AUFRUF_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, "AUFRUF_TRUSTED_PROXIES"),
        ({"AUFRUF_DATABASE_URL": "mysql://x"}, "AUFRUF_DATABASE_URL"),
        ({"AUFRUF_SECRET_KEY": "short"}, "AUFRUF_SECRET_KEY"),
    ],
)
def test_a_bad_value_names_its_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"AUFRUF_SECRET_KEY": KEY} | env)


def test_postgres_without_a_secret_key_is_refused():
    with pytest.raises(SettingsError, match="AUFRUF_SECRET_KEY"):
        Settings.from_env({"AUFRUF_DATABASE_URL": "postgresql://u@h/db"}, create_secret=True)


def test_trusted_proxies_accept_addresses_and_networks():
    settings = Settings.from_env(
        {"AUFRUF_SECRET_KEY": KEY, "AUFRUF_TRUSTED_PROXIES": "10.0.0.1, fd00::/8"}
    )
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32", "fd00::/8"]


def _aufruf(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aufruf.cli", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_several_workers_on_sqlite(tmp_path):
    result = _aufruf("serve", "--workers", "2", cwd=tmp_path)
    assert result.returncode != 0
    assert "--workers above 1 needs PostgreSQL" in result.stderr


def test_a_bad_setting_is_a_message_not_a_traceback(tmp_path):
    result = _aufruf("db", "upgrade", cwd=tmp_path, env={"AUFRUF_BOOKING_RATE_LIMIT": "ten"})
    assert result.returncode != 0
    assert "AUFRUF_BOOKING_RATE_LIMIT must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema_and_says_so(tmp_path):
    first = _aufruf("db", "upgrade", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty to revision" in first.stdout
    second = _aufruf("db", "upgrade", cwd=tmp_path)
    assert "up to date" in second.stdout
    assert (tmp_path / "aufruf.db").exists()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUFRUF_SMTP_URL": "http://mail.example.org"}, "AUFRUF_SMTP_URL"),
        ({"AUFRUF_SMTP_URL": "smtp://mail.example.org:port"}, "AUFRUF_SMTP_URL"),
        ({"AUFRUF_REMINDER": "tomorrow"}, "AUFRUF_REMINDER"),
    ],
)
def test_mail_settings_are_checked_at_start(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"AUFRUF_SECRET_KEY": KEY} | env)
