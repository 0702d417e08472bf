"""The LocationHub: the streams of a location share one channel subscription while any of them
follows it; each event is parsed once and reaches every stream; a RESYNC becomes one read of
the location's seq for all; the subscription ends with the last stream."""

from __future__ import annotations

import asyncio

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

from aufruf.display.channels import RESYNC
from aufruf.display.hub import AFTER, IN_TURN, LocationHub
from aufruf.display.service import LocationViews
from aufruf.queue import service as queue
from aufruf.queue.events import location_channel
from tests.builders import a_location

CHANNEL = location_channel("amt")


class Ear:
    """A stream that only notes what it hears."""

    def __init__(self) -> None:
        self.events: list[int] = []
        self.seqs: list[int] = []
        self.views: list = []  # the LocationView handed over with each event
        self.heard = asyncio.Event()

    def on_event(self, message: dict, view) -> None:
        self.events.append(message["seq"])
        self.views.append(view)
        self.heard.set()

    def heard_seq(self, seq: int, view) -> None:
        self.seqs.append(seq)
        self.heard.set()


async def heard(*ears: Ear) -> None:
    async with asyncio.timeout(5):
        for ear in ears:
            await ear.heard.wait()
            ear.heard.clear()


def subscriptions(plugin: ChannelsPlugin) -> int:
    return len(plugin._channels.get(CHANNEL, ()))


async def test_streams_share_one_subscription_until_the_last_leaves(db, clock):
    await a_location(db)
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        hub = LocationHub(plugin, LocationViews(db, clock))
        first, second, other = Ear(), Ear(), Ear()
        async with hub.joined("amt", first), hub.joined("amt", second):
            assert subscriptions(plugin) == 1
            assert hub.following("amt") == 2

            await plugin.wait_published({"type": "called", "seq": 7}, CHANNEL)
            await heard(first, second)
            assert first.events == second.events == [7]

            async with hub.joined("amt", other):
                pass  # joined and left while the others stay
            assert subscriptions(plugin) == 1

            change = queue.Change()
            async with db.write() as session:
                await queue.draw_ticket(
                    session, change, clock.now(), "amt", ["pass"], source="staff", actor="t"
                )
            await plugin.wait_published(RESYNC, CHANNEL)  # the backend lost its subscription
            await heard(first, second)
            assert first.seqs == second.seqs == [1]  # the location's seq, read from the database

            await plugin.wait_published({"type": "waiting", "seq": 1}, CHANNEL)
            await heard(first, second)
            assert first.views[-1] is second.views[-1]  # computed once for both
            assert first.views[-1].seq == 1
            assert first.views[-1].waiting == {"pass": 1}

        assert hub.following("amt") == 0
        assert subscriptions(plugin) == 0
        assert other.events == []


async def test_a_failing_stream_does_not_silence_the_others(db, clock):
    class Broken(Ear):
        def on_event(self, message: dict, view) -> None:
            raise RuntimeError("broken")

        def heard_seq(self, seq: int, view) -> None:
            raise RuntimeError("broken")

    await a_location(db)
    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        hub = LocationHub(plugin, LocationViews(db, clock))
        broken, fine = Broken(), Ear()
        async with hub.joined("amt", broken), hub.joined("amt", fine):
            await plugin.wait_published({"type": "waiting", "seq": 3}, CHANNEL)
            await plugin.wait_published(b"not json", CHANNEL)
            await plugin.wait_published({"type": "waiting", "seq": 4}, CHANNEL)
            async with asyncio.timeout(5):
                while fine.events != [3, 4]:
                    await fine.heard.wait()
                    fine.heard.clear()
            # nor when the backend lost its subscription and every stream hears the seq
            await plugin.wait_published(RESYNC, CHANNEL)
            await heard(fine)
            assert fine.seqs == [0]  # the location's seq, read from the database
            await plugin.wait_published({"type": "waiting", "seq": 5}, CHANNEL)
            await heard(fine)
            assert fine.events == [3, 4, 5]


async def test_events_that_came_together_reach_the_wall_then_the_phones_then_the_desks():
    """A transaction's events ("done", then "called") arrive while the view is being read:
    the view is read once and handed over with both; the wall displays (sending from tasks
    of their own) send before the phones (sending their state in the hub's turn, from the
    newest event) get theirs, and the desks (from tasks of their own) after the phones."""
    order: list[tuple[str, list[int]]] = []
    reads: list[int] = []
    asked, gate, queued, done = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Views:
        async def at_least(self, location: str, seq: int):
            reads.append(seq)
            asked.set()
            await gate.wait()
            return f"view at {seq}"

    class Wall(Ear):
        name = "wall"

        def __init__(self) -> None:
            super().__init__()
            self.sent = asyncio.Event()
            self.task = asyncio.create_task(self.render())

        async def render(self) -> None:
            while True:
                await self.heard.wait()
                self.heard.clear()
                order.append((self.name, list(self.events)))
                self.sent.set()

    class Desk(Wall):
        name = "desk"
        phase = AFTER

    class Phone(Ear):
        phase = IN_TURN

        def on_event(self, message: dict, view) -> None:
            super().on_event(message, view)
            order.append(("phone", list(self.events)))
            done.set()

    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        hub = LocationHub(plugin, Views())
        wall, phone, desk = Wall(), Phone(), Desk()
        async with hub.joined("amt", desk), hub.joined("amt", wall), hub.joined("amt", phone):
            subscriber = hub._feeds["amt"][0]
            put = subscriber.put_nowait

            def noted(item):  # the hub's queue has the event (the plugin puts it there)
                put(item)
                queued.set()

            subscriber.put_nowait = noted
            async with asyncio.timeout(5):
                await plugin.wait_published({"type": "done", "seq": 8}, CHANNEL)
                await asked.wait()  # the hub reads the view for 8 …
                queued.clear()
                await plugin.wait_published({"type": "called", "seq": 9}, CHANNEL)
                await queued.wait()  # … while 9 comes
                gate.set()
                await done.wait()
                await desk.sent.wait()
        wall.task.cancel()
        desk.task.cancel()
    assert reads == [8]  # one view for both
    assert wall.events == [8, 9]
    assert wall.views == ["view at 8", "view at 8"]
    assert phone.events == [9]  # the phone sends a state: the newest event says all
    assert phone.views == ["view at 8"]
    assert desk.events == [8, 9]
    assert order == [("wall", [8, 9]), ("phone", [9]), ("desk", [8, 9])]


async def test_a_resync_that_comes_while_a_view_is_read_is_answered_in_its_place():
    """Of the messages that came while a view was read, those before a RESYNC go out with
    that view; then the location's seq is read for the RESYNC; what came after it gets a
    view of its own."""
    log: list[tuple[str, int]] = []
    reads: list[int] = []
    asked, gate, queued, done = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    class View:
        def __init__(self, seq: int) -> None:
            self.seq = seq

    class Views:
        async def at_least(self, location: str, seq: int):
            reads.append(seq)
            asked.set()
            await gate.wait()
            return View(seq)

        async def current(self, location: str):
            return View(9)

    class Log(Ear):
        def on_event(self, message: dict, view) -> None:
            log.append(("event", message["seq"]))
            if message["seq"] == 10:
                done.set()

        def heard_seq(self, seq: int, view) -> None:
            log.append(("resync", seq))

    async with ChannelsPlugin(backend=MemoryChannelsBackend(), channels=[CHANNEL]) as plugin:
        hub = LocationHub(plugin, Views())
        async with hub.joined("amt", Log()):
            subscriber = hub._feeds["amt"][0]
            put = subscriber.put_nowait

            def noted(item):
                put(item)
                queued.set()

            subscriber.put_nowait = noted
            async with asyncio.timeout(5):
                await plugin.wait_published({"type": "waiting", "seq": 8}, CHANNEL)
                await asked.wait()
                for message in ({"type": "waiting", "seq": 9}, RESYNC, {"type": "done", "seq": 10}):
                    queued.clear()
                    await plugin.wait_published(message, CHANNEL)
                    await queued.wait()
                gate.set()
                await done.wait()
    assert reads == [8, 10]
    assert log == [("event", 8), ("event", 9), ("resync", 9), ("event", 10)]
