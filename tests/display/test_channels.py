"""The channel backends of aufruf.display.channels against the real servers."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from aufruf.display.channels import PostgresListenBackend
from tests.conftest import need_postgres


async def test_an_instance_hears_its_own_events_once_and_the_others_through_postgresql():
    """Two instances on one database without Redis: each hears what it publishes itself
    once (handed over at once; PostgreSQL's echo of its NOTIFY is dropped) and what the
    other publishes through LISTEN/NOTIFY, in order."""
    dsn = PostgresListenBackend.dsn_of(need_postgres())
    channel = f"location:test-{uuid4().hex}"
    here, there = PostgresListenBackend(dsn), PostgresListenBackend(dsn)
    for backend in (here, there):
        await backend.on_startup()
        await backend.subscribe([channel])
    try:
        heard_here, heard_there = here.stream_events(), there.stream_events()
        async with asyncio.timeout(10):
            await here.publish(b'{"seq": 1}', [channel])
            assert await anext(heard_here) == (channel, b'{"seq": 1}')
            assert await anext(heard_there) == (channel, b'{"seq": 1}')
            await there.publish(b'{"seq": 2}', [channel])
            # not seq 1 again: the echo of here's NOTIFY came before seq 2 and was dropped
            assert await anext(heard_here) == (channel, b'{"seq": 2}')
            assert await anext(heard_there) == (channel, b'{"seq": 2}')
    finally:
        for backend in (here, there):
            await backend.on_shutdown()
