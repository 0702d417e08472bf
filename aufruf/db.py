"""Engine, sessions and the declarative base shared by every domain's model.py.

SQLite: WAL, foreign keys, a busy timeout, and a transaction that really starts at BEGIN
(the driver otherwise reads outside it); write transactions take the lock up front with
BEGIN IMMEDIATE so a decision and its write are one serialised step (ARCHITECTURE.md rule 1).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

SQLITE_BUSY_TIMEOUT_MS = 15_000

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored in UTC, always returned timezone-aware, on both backends."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an instant is stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Texts(TypeDecorator[dict[str, str]]):
    """A text a citizen sees, in several languages: {"de": "...", "en": "..."}."""

    impl = JSON
    cache_ok = True


def pick_text(texts: dict[str, str] | None, language: str, fallback: str = "de") -> str:
    """The text in `language`, else the fallback language, else any there is."""
    if not texts:
        return ""
    return texts.get(language) or texts.get(fallback) or next(iter(texts.values()))


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _sqlite_transactions(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # no ping before every checkout (a round trip per request); a connection the server
    # dropped is discarded when it fails, and none is kept longer than half an hour
    kwargs.setdefault("pool_recycle", 1800)
    # the connection used last is handed out next: a few connections carry the day's work
    # with their statements prepared (asyncpg prepares each statement once per connection;
    # handed out in turn, every one of thirty connections paid that for every statement)
    kwargs.setdefault("pool_use_lifo", True)
    return create_async_engine(url, **kwargs)


def _sqlite_transactions(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN")


async def _nothing_to_reset(_connection: Any) -> None:
    """asyncpg's pool still rolls back a transaction left open before it calls this."""


class Database:
    """The engine and two session factories: `read()` for answers, `write()` for changes."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.is_sqlite = url.startswith("sqlite")
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        writer_bind = (
            self.engine.execution_options(sqlite_immediate=True) if self.is_sqlite else self.engine
        )
        self._writer = async_sessionmaker(writer_bind, expire_on_commit=False)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._raw: asyncio.Future | None = None
        self._planned_once: asyncio.Future | None = None
        self._shared: dict[tuple, list[asyncio.Future | None]] = {}

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction that commits when the block ends and rolls back on an exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def peek(self, sql: str, *params: Any) -> Any:
        """One scalar read outside any transaction, for the cheap checks on hot paths (whether
        a cached answer still holds). `sql` uses $1, $2 … for its parameters. On PostgreSQL it
        goes through a small pool of plain asyncpg connections: a single round trip without
        the ORM's bookkeeping."""
        row = await self.peek_row(sql, *params)
        return None if row is None else row[0]

    async def peek_row(self, sql: str, *params: Any, planned_once: bool = False) -> tuple | None:
        """As `peek`, the first row (a tuple), or None. `planned_once`: on PostgreSQL through
        connections that plan a statement once for any parameters (a generic plan), for a
        statement read very often whose planning costs more than its run (a live view: 1.2 ms
        planned for every event, 0.4 ms run); written so that one plan suits all its
        parameters (its constants, such as the statuses, are in its text)."""
        if self.is_sqlite:
            statement = text(re.sub(r"\$(\d+)", r":p\1", sql))
            async with self._autocommit.connect() as conn:
                named = {f"p{i}": value for i, value in enumerate(params, 1)}
                row = (await conn.execute(statement, named)).first()
                return None if row is None else tuple(row)
        pool = await (self._planned_once_pool() if planned_once else self._pool())
        row = await pool.fetchrow(sql, *params)
        return None if row is None else tuple(row)

    async def commit_row(self, sql: str, *params: Any) -> tuple | None:
        """PostgreSQL only: one statement outside any transaction, so that PostgreSQL commits
        it as it ends, in the same round trip; its first row, or None. For the hot paths whose
        rows stay locked to commit: no wait for the app's COMMIT while they are held."""
        if self.is_sqlite:
            raise RuntimeError("commit_row runs on PostgreSQL only")
        return await self.peek_row(sql, *params)

    @asynccontextmanager
    async def own_transaction(self) -> AsyncIterator[Any]:
        """PostgreSQL only: a plain asyncpg connection for a hot path that begins a transaction
        itself (its BEGIN sent with its first statements, in one simple query) and commits it
        as it sends its last statement (one round trip for both). Rolled back when the block
        raises, committed if the block left it open."""
        if self.is_sqlite:
            raise RuntimeError("own_transaction runs on PostgreSQL only")
        async with (await self._pool()).acquire() as connection:
            try:
                yield connection
            except BaseException:
                if connection.is_in_transaction():
                    await connection.execute("ROLLBACK")
                raise
            if connection.is_in_transaction():
                await connection.execute("COMMIT")

    async def shared_row(self, sql: str, *params: Any) -> tuple | None:
        """As `peek_row`, one read shared by the requests asking the same at once. A request
        never uses a read that began before it arrived (it could miss a change committed just
        before): those arriving while a read is under way share the next one, which begins
        when that one ends."""
        key = (sql, params)
        entry = self._shared.setdefault(key, [None, None])
        if entry[0] is None:
            entry[0] = asyncio.ensure_future(self._shared_read(key, entry))
            return await asyncio.shield(entry[0])
        if entry[1] is None:
            entry[1] = asyncio.ensure_future(self._shared_after(key, entry, entry[0]))
        return await asyncio.shield(entry[1])

    async def _shared_after(self, key: tuple, entry: list, previous: asyncio.Future) -> Any:
        await asyncio.wait([previous])
        entry[0], entry[1] = entry[1], None
        return await self._shared_read(key, entry)

    async def _shared_read(self, key: tuple, entry: list) -> Any:
        me = asyncio.current_task()
        try:
            return await self.peek_row(key[0], *key[1])
        finally:
            if entry[0] is me:
                entry[0] = None
            if entry[0] is None and entry[1] is None and self._shared.get(key) is entry:
                del self._shared[key]

    async def _pool(self) -> Any:
        """The plain asyncpg pool, made at its first use."""
        if self._raw is None:
            self._raw = asyncio.ensure_future(self._raw_pool(16))
        return await asyncio.shield(self._raw)

    async def _planned_once_pool(self) -> Any:
        """A few plain connections with generic plans (`peek_row(planned_once=True)`)."""
        if self._planned_once is None:
            settings = {"plan_cache_mode": "force_generic_plan"}
            self._planned_once = asyncio.ensure_future(self._raw_pool(4, settings))
        return await asyncio.shield(self._planned_once)

    async def _raw_pool(self, size: int, settings: dict[str, str] | None = None) -> Any:
        import asyncpg

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        # its statements leave no session state a later use could trip on (no SET, LISTEN,
        # cursor or session lock; the one session setting, aufruf.raised_version, is written
        # before every read of it), so a connection goes back without asyncpg's reset query:
        # one round trip less per use
        return await asyncpg.create_pool(
            dsn, min_size=1, max_size=size, reset=_nothing_to_reset, server_settings=settings
        )

    async def dispose(self) -> None:
        for pool in (self._raw, self._planned_once):
            if pool is not None and pool.done() and not pool.exception():
                await pool.result().close()
        await self.engine.dispose()


async def driver_connection(session: AsyncSession) -> Any | None:
    """On PostgreSQL, the asyncpg connection under `session`, inside the session's transaction
    (begun here when no statement has begun it yet), for the few statements of a hot path sent
    as plain SQL: they commit or roll back with the session, and see what the session has
    changed (flushed here, as the ORM flushes before its own statements). None on SQLite."""
    if session.bind.dialect.name != "postgresql":
        return None
    if session.new or session.dirty or session.deleted:
        await session.flush()
    pooled = await (await session.connection()).get_raw_connection()
    adapted = pooled.dbapi_connection
    if adapted._transaction is None:  # the dialect sends BEGIN before its first statement
        await adapted._start_transaction()
    return pooled.driver_connection
