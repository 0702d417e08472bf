"""Shared fixtures: every database test runs on SQLite and on PostgreSQL (`db` is parametrised).

The schema is migrated once per backend into a template (a SQLite file; a PostgreSQL database
made for this run); each test then gets a clean copy (file copy) or clean tables (TRUNCATE).
Without AUFRUF_TEST_POSTGRES_URL the PostgreSQL variants are skipped with that reason, and
`make test` lists them; with AUFRUF_TEST_REQUIRE_ALL=1 (CI) a missing service is an error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from aufruf import migrate, models
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.settings import Settings

POSTGRES_URL = os.environ.get("AUFRUF_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("AUFRUF_TEST_REDIS_URL")
REQUIRE_ALL = os.environ.get("AUFRUF_TEST_REQUIRE_ALL") == "1"
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def need_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if REQUIRE_ALL:
        pytest.fail("AUFRUF_TEST_POSTGRES_URL is not set but AUFRUF_TEST_REQUIRE_ALL=1")
    pytest.skip("PostgreSQL not configured (set AUFRUF_TEST_POSTGRES_URL)")


def need_redis() -> str:
    if REDIS_URL:
        return REDIS_URL
    if REQUIRE_ALL:
        pytest.fail("AUFRUF_TEST_REDIS_URL is not set but AUFRUF_TEST_REQUIRE_ALL=1")
    pytest.skip("Redis not configured (set AUFRUF_TEST_REDIS_URL)")


def _asyncpg(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


def _with_database(url: str, name: str) -> str:
    base, _, _ = _asyncpg(url).rpartition("/")
    return f"{base}/{name}"


_templates: dict[str, str] = {}


async def _sqlite_template(directory: Path) -> Path:
    if "sqlite" not in _templates:
        path = directory / "template.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(db.engine)
        await db.dispose()
        _templates["sqlite"] = str(path)
    return Path(_templates["sqlite"])


async def _postgres_database() -> str:
    """A database of our own on the test server, migrated to head once per run."""
    if "postgres" not in _templates:
        url = need_postgres()
        name = f"aufruf_test_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(_asyncpg(url), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        own = _with_database(url, name)
        db = Database(own)
        await migrate.upgrade(db.engine)
        await db.dispose()
        _templates["postgres"] = own
        _templates["postgres_name"] = name
    return _templates["postgres"]


@pytest.fixture(scope="session", autouse=True)
async def _drop_test_databases() -> AsyncIterator[None]:
    yield
    if "postgres_name" in _templates and POSTGRES_URL:
        admin = create_async_engine(_asyncpg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(
                text(f'DROP DATABASE IF EXISTS "{_templates["postgres_name"]}" WITH (FORCE)')
            )
        await admin.dispose()


TABLES = [t.name for t in reversed(models.Base.metadata.sorted_tables)]


@pytest.fixture(params=BACKENDS)
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A migrated, empty database on the parametrised backend."""
    if request.param == "sqlite":
        path = tmp_path / "aufruf.db"
        template = await _sqlite_template(tmp_path_factory.getbasetemp())
        shutil.copyfile(template, path)
        database = Database(f"sqlite+aiosqlite:///{path}")
    else:
        database = Database(await _postgres_database())
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    """Monday 2026-11-23, 07:00 in Berlin: a working day with the office about to open."""
    return FixedClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET, booking_rate_limit=0)


@pytest.fixture
async def client(db: Database, settings: Settings, clock: FixedClock) -> AsyncIterator:
    """The app on the test database, with the test clock, called in this event loop."""
    import httpx

    from aufruf.app import create_app

    app = create_app(settings, db=db, clock=clock)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with running(app):
        test_client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        yield test_client
        await test_client.aclose()


@asynccontextmanager
async def running(app) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own: fixtures set up and tear down in
    different tasks, and the lifespan's task group must be left where it was entered."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say plainly what this run did not run, and why."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("not run here")
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count:4d} tests: {reason}")
