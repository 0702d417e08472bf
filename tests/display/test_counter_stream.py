"""The counter socket's life after the snapshot, with a stand-in socket and the real channels
plugin: old and doubled events are dropped, silence gets a ping, lost credentials close the
socket, and a client that leaves ends the stream and its subscription."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.exceptions import WebSocketDisconnect

from aufruf.display import sockets
from aufruf.display.service import LocationView
from aufruf.display.sockets import CounterStream
from aufruf.errors import Unauthorized
from aufruf.queue.events import location_channel

TIMEOUT = 5.0
CHANNEL = location_channel("amt")


class StandInSocket:
    """What CounterStream uses of a websocket; frames sent are kept in `sent`."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[dict] = asyncio.Queue()
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.connection_state = "receive"

    async def send_text(self, text: str) -> None:
        await self.sent.put(json.loads(text))

    async def send(self, message: dict) -> None:  # the ASGI event, as WebSocket.send takes it
        await self.send_text(message["text"])

    async def receive_text(self) -> str:
        text = await self.inbox.get()
        if text is None:
            self.connection_state = "disconnect"
            raise WebSocketDisconnect(detail="the client left", code=1001)
        return text

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.sent.put({"closed": code, "reason": reason})

    async def frame(self) -> dict:
        return await asyncio.wait_for(self.sent.get(), TIMEOUT)


class StandInViews:
    """Views whose seq is whatever was asked for (at least `seq`); counts the computations."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.asked: list[int] = []

    def view(self, seq: int) -> LocationView:
        counter = {"id": "amt-1", "name": "Platz 1", "services": [], "status": "open"}
        return LocationView(
            location="amt",
            seq=seq,
            at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
            counters={"amt-1": {**counter, "clerk": None, "current": None}},
            queues={"amt-1": []},
            waiting={},
            computed=0.0,
        )

    async def current(self, location: str) -> LocationView:
        return self.view(self.seq)

    async def at_least(self, location: str, seq: int, **_: object) -> LocationView:
        self.asked.append(seq)
        return self.view(max(seq, self.seq))


@pytest.fixture
async def channels() -> AsyncIterator[ChannelsPlugin]:
    async with ChannelsPlugin(
        backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True
    ) as plugin:
        yield plugin


async def still_valid() -> str:
    return "amt"


async def serve(channels: ChannelsPlugin, stream: CounterStream, recheck=still_valid) -> None:
    """What the handler does after admitting the socket."""
    async with channels.start_subscription([CHANNEL]) as subscriber:
        await stream.run(subscriber, recheck)


def subscribers(channels: ChannelsPlugin) -> int:
    return len(channels._channels.get(CHANNEL, ()))  # the plugin's own bookkeeping


async def test_old_and_doubled_events_are_dropped(channels):
    """(A burst of new events may also become one state: only the last seq counts.)"""
    socket, views = StandInSocket(), StandInViews(seq=3)
    task = asyncio.create_task(serve(channels, CounterStream(socket, "amt-1", "amt", views)))
    assert (await socket.frame())["seq"] == 3

    channels.publish({"type": "issued", "seq": 5}, CHANNEL)
    first = await socket.frame()
    for seq in (5, 4, 2, 6):
        channels.publish({"type": "issued", "seq": seq}, CHANNEL)
    second = await socket.frame()
    await socket.inbox.put(None)
    await asyncio.wait_for(task, TIMEOUT)

    assert (first["seq"], second["seq"]) == (5, 6)
    assert views.asked == [5, 6]
    assert socket.sent.empty()


async def test_a_client_that_leaves_ends_the_stream_and_its_subscription(channels):
    socket = StandInSocket()
    task = asyncio.create_task(
        serve(channels, CounterStream(socket, "amt-1", "amt", StandInViews(seq=0)))
    )
    await socket.frame()
    assert subscribers(channels) == 1

    await socket.inbox.put(None)  # nothing is sent meanwhile: only the receive loop can notice
    await asyncio.wait_for(task, TIMEOUT)

    assert subscribers(channels) == 0


async def test_a_ping_answers_and_silence_gets_a_ping(channels, monkeypatch):
    monkeypatch.setattr(sockets, "HEARTBEAT_SECONDS", 0.05)
    socket = StandInSocket()
    task = asyncio.create_task(
        serve(channels, CounterStream(socket, "amt-1", "amt", StandInViews(seq=0)))
    )
    await socket.frame()
    await socket.inbox.put(json.dumps({"type": "ping"}))
    await socket.inbox.put("not json")

    frames = [await socket.frame(), await socket.frame()]
    await socket.inbox.put(None)
    await asyncio.wait_for(task, TIMEOUT)

    assert frames == [{"type": "pong"}, {"type": "ping"}]


async def test_a_session_that_ends_closes_the_socket(channels, monkeypatch):
    monkeypatch.setattr(sockets, "RECHECK_SECONDS", 0.05)

    async def signed_out() -> str:
        raise Unauthorized("Your session has expired. Please sign in again.")

    socket = StandInSocket()
    stream = CounterStream(socket, "amt-1", "amt", StandInViews(seq=0))
    task = asyncio.create_task(serve(channels, stream, signed_out))
    await socket.frame()

    closed = await socket.frame()
    await asyncio.wait_for(task, TIMEOUT)

    assert closed["closed"] == 4401
    assert subscribers(channels) == 0


async def test_a_lost_event_shows_at_the_next_check(channels, monkeypatch):
    monkeypatch.setattr(sockets, "RECHECK_SECONDS", 0.05)
    socket, views = StandInSocket(), StandInViews(seq=2)
    task = asyncio.create_task(serve(channels, CounterStream(socket, "amt-1", "amt", views)))
    assert (await socket.frame())["seq"] == 2

    views.seq = 7  # committed, but its event never came
    healed = await socket.frame()
    await socket.inbox.put(None)
    await asyncio.wait_for(task, TIMEOUT)

    assert (healed["type"], healed["seq"]) == ("counter", 7)
