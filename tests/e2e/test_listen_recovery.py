"""PostgreSQL LISTEN/NOTIFY without Redis: when the listening connection of the instance a
display is connected to is killed mid-stream (pg_terminate_backend), the instance listens again,
the display gets the next call, and it ends in the database's state."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from websockets.asyncio.client import connect

from tests.e2e import test_fanout as fanout
from tests.e2e.test_fanout import TIMEOUT, Wall, call, display_url, follow_until, next_message

database = fanout.database  # a PostgreSQL database of the test's own, with an office


async def listeners(dsn: str, name: str) -> list[int]:
    """The pids of the connections to database `name` that LISTEN on a location's channel."""
    admin = await asyncpg.connect(dsn)
    try:
        rows = await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'", name
        )
        return [row["pid"] for row in rows]
    finally:
        await admin.close()


async def new_listeners(dsn: str, name: str, old: list[int]) -> list[int]:
    """The listening connections once none of `old` is among them (polling the database for
    a state, not timing the product)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = await listeners(dsn, name)
            if found and not set(found) & set(old):
                return found
            await asyncio.sleep(0.1)


async def terminate(dsn: str, pids: list[int]) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        for pid in pids:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_the_display_is_right_after_the_listening_connection_is_killed(database, tmp_path):
    dsn = "postgresql://" + database.split("://", 1)[1]
    name = database.rsplit("/", 1)[1]
    instances = fanout.Instances(database, None, tmp_path)
    office = await fanout.tokens(database)
    try:
        instances.start()
        first, second = instances.bases
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as http,
            connect(display_url(second), open_timeout=TIMEOUT, proxy=None) as ws,
        ):
            wall = Wall(await next_message(ws))
            called = await call(http, first, office)
            await follow_until(ws, wall, "called", called["number"])

            before = await listeners(dsn, name)
            assert before  # instance 2 listens for its display (instance 1 may too)
            await terminate(dsn, before)
            again = await call(http, first, office)  # maybe notified while nobody listens
            await follow_until(ws, wall, "called", again["number"])

            assert await new_listeners(dsn, name, before)  # listening on a new connection

            third = await call(http, first, office)  # through the new listening connection
            await follow_until(ws, wall, "called", third["number"])

        async with connect(display_url(first), open_timeout=TIMEOUT, proxy=None) as fresh:
            truth = Wall(await next_message(fresh))
    finally:
        instances.stop()
    assert wall.state() == truth.state()
    assert [c["number"] for c in wall.called[:3]] == [
        third["number"],
        again["number"],
        called["number"],
    ]
