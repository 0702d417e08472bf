"""The wall display's stream with a stand-in socket, its own channels plugin and the real
database: an event whose seq skips some makes the stream read the missing rows first; old and
doubled seqs are dropped; a RESYNC from the backend makes it catch up from the database."""

from __future__ import annotations

import asyncio

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from sqlalchemy import select

from aufruf.display.channels import RESYNC
from aufruf.display.public import DisplayFeed, DisplayStream
from aufruf.display.service import LocationViews
from aufruf.queue.events import event_message, location_channel
from aufruf.queue.model import QueueEvent
from tests.display import test_counter_socket as counter_tests
from tests.display.test_counter_socket import bearer
from tests.display.test_counter_stream import StandInSocket

CHANNEL = location_channel("amt")
office = counter_tests.office  # a location with counters and tokens


async def draw(client, office, service="pass") -> None:
    answer = await client.post(
        "/api/v1/locations/amt/tickets", json={"service": service}, headers=bearer(office["kiosk"])
    )
    assert answer.status_code == 201, answer.text


async def event(db, seq: int) -> dict:
    async with db.read() as session:
        row = await session.scalar(
            select(QueueEvent).where(QueueEvent.location_id == "amt", QueueEvent.seq == seq)
        )
        return event_message(row)


async def started(db, clock, plugin):
    socket = StandInSocket()
    stream = DisplayStream(socket, "amt", LocationViews(db, clock), DisplayFeed(db))

    async def recheck() -> None:
        return None

    async def run() -> None:
        async with plugin.start_subscription([CHANNEL]) as subscriber:
            await stream.run(subscriber, recheck)

    task = asyncio.create_task(run())
    snapshot = await socket.frame()
    return socket, task, snapshot


async def stopped(socket, task) -> None:
    await socket.inbox.put(None)  # the client leaves
    await asyncio.wait_for(task, 5)


async def test_a_gap_is_filled_from_the_database_and_doubles_are_dropped(client, db, clock, office):
    clerk = bearer(office["clerk-1"])
    await draw(client, office)
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        socket, task, snapshot = await started(db, clock, plugin)
        assert (snapshot["type"], snapshot["seq"]) == ("snapshot", 1)

        await draw(client, office, "other")  # seq 2
        await client.post("/api/v1/counters/amt-1/open", headers=clerk)  # 3
        await client.post("/api/v1/counters/amt-1/call-next", headers=clerk)  # 4
        # only the last event comes on this stream's channel: 2 and 3 are read from the rows
        await plugin.wait_published(await event(db, 4), CHANNEL)
        frames = [await socket.frame() for _ in range(3)]
        assert [f["seq"] for f in frames] == [2, 3, 4]
        assert [f["type"] for f in frames] == ["waiting", "waiting", "called"]
        assert (frames[2]["number"], frames[2]["counter"]) == ("A001", "Platz 1")
        assert frames[2]["waiting"] == {"other": 1}

        # doubles and old seqs are dropped: the next frame is the next event
        await plugin.wait_published(await event(db, 4), CHANNEL)
        await plugin.wait_published(await event(db, 2), CHANNEL)
        await draw(client, office)  # 5
        await plugin.wait_published(await event(db, 5), CHANNEL)
        after = await socket.frame()
        assert (after["type"], after["seq"]) == ("waiting", 5)
        assert after["waiting"] == {"other": 1, "pass": 1}
        assert socket.sent.empty()
        await stopped(socket, task)


async def test_a_resync_catches_up_from_the_database(client, db, clock, office):
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        socket, task, snapshot = await started(db, clock, plugin)
        assert snapshot["seq"] == 0
        await draw(client, office)
        await draw(client, office)
        plugin.publish(RESYNC, CHANNEL)  # what a backend says after its subscription broke
        frames = [await socket.frame() for _ in range(2)]
        assert [(f["type"], f["seq"]) for f in frames] == [("waiting", 1), ("waiting", 2)]
        assert frames[1]["waiting"] == {"pass": 2}
        await stopped(socket, task)
