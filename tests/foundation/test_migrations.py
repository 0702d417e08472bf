"""The schema changes only through Alembic: an empty database goes up to head and back down,
and the models agree with the migrations (autogenerate finds nothing to do)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from aufruf import migrate, models
from aufruf.db import Database
from tests.conftest import _asyncpg, _with_database, need_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_db(request, tmp_path: Path):
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        yield database
        await database.dispose()
        return
    url = need_postgres()
    name = f"aufruf_migrate_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(_asyncpg(url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(_with_database(url, name))
    try:
        yield database
    finally:
        await database.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


def _differences(sync_conn) -> list:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(context, models.Base.metadata)


async def test_empty_database_migrates_up_to_head_and_back_down(empty_db):
    await migrate.upgrade(empty_db.engine)
    assert await migrate.current_revision(empty_db.engine) == migrate.head_revision()
    assert {t.name for t in models.Base.metadata.sorted_tables} <= await _tables(empty_db)

    await migrate.downgrade(empty_db.engine, "base")
    assert await migrate.current_revision(empty_db.engine) is None
    assert await _tables(empty_db) <= {"alembic_version"}

    await migrate.upgrade(empty_db.engine)
    assert await migrate.current_revision(empty_db.engine) == migrate.head_revision()


async def test_models_and_migrations_agree(empty_db):
    await migrate.upgrade(empty_db.engine)
    async with empty_db.engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == []
