"""Alembic environment: async engines, batch mode for SQLite, project types rendered plainly."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from aufruf import models
from aufruf.db import Texts, UTCDateTime, create_engine

config = context.config
target_metadata = models.Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write project column types as the plain SQLAlchemy types they store as."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, Texts):
        return "sa.JSON()"
    return False


def configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )


def run_with(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from aufruf.settings import Settings

        url = Settings.from_env(create_secret=True).database_url
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_with)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; use `aufruf db upgrade`")

if config.attributes.get("connection") is not None:
    # called by aufruf.migrate inside AsyncConnection.run_sync with a sync connection
    run_with(config.attributes["connection"])
else:
    asyncio.run(run_online())
