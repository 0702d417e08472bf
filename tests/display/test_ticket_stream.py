"""The phone view's stream gets each event's view from the hub and sends it in the hub's turn
when its socket can take it (no task woken per phone); a socket that makes the send wait gets
the rest later, in order, never an older state after a newer; a send that fails ends the
stream. And `run_now`, which makes that turn possible."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aufruf.display.public import TicketStream
from aufruf.display.service import LocationView
from aufruf.display.sockets import run_now
from tests.display.test_counter_stream import StandInSocket

TICKET = 7


def view(seq: int, ahead: int | None, status: str = "waiting") -> LocationView:
    shape = {"id": TICKET, "number": "A007", "status": status, "people_ahead": ahead}
    return LocationView(
        location="amt",
        seq=seq,
        at=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
        counters={},
        queues={},
        waiting={},
        computed=0.0,
        tickets={TICKET: shape},
    )


class Views:
    def __init__(self, first: LocationView) -> None:
        self.latest = first

    async def current(self, location: str) -> LocationView:
        return self.latest

    async def at_least(self, location: str, seq: int, **_: object) -> LocationView:
        return self.latest


class HeldSocket(StandInSocket):
    """A socket whose sends wait while `held` is clear (a client that reads slowly)."""

    def __init__(self) -> None:
        super().__init__()
        self.held = asyncio.Event()
        self.held.set()

    async def send_text(self, text: str) -> None:
        await self.held.wait()
        await super().send_text(text)


class NewestFirstSocket(StandInSocket):
    """A socket that, while `holding`, keeps every send waiting and lets them go newest first:
    the order frames leave in must not hang on the order a socket wakes its waiters in."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.gates: list[asyncio.Event] = []

    async def send_text(self, text: str) -> None:
        if self.holding:
            gate = asyncio.Event()
            self.gates.append(gate)
            await gate.wait()
        await super().send_text(text)

    def release(self) -> None:
        self.holding = False
        for gate in reversed(self.gates):
            gate.set()


async def still_there() -> None:
    return None


async def started(socket: StandInSocket) -> tuple[TicketStream, asyncio.Task]:
    stream = TicketStream(socket, TICKET, "amt", Views(view(1, 5)))
    task = asyncio.create_task(stream.run(None, still_there))
    assert (await socket.frame())["people_ahead"] == 5  # the snapshot
    return stream, task


async def test_an_event_is_sent_in_the_hubs_turn():
    socket = StandInSocket()
    stream, task = await started(socket)

    stream.on_event({"type": "called", "seq": 2}, view(2, 4))
    # no await in between: the frame was written while the hub handed the event over
    assert socket.sent.qsize() == 1
    assert (await socket.frame())["people_ahead"] == 4

    stream.on_event({"type": "called", "seq": 3}, view(3, 4))  # nothing changed for it
    socket.inbox.put_nowait(None)  # the phone goes away
    await asyncio.wait_for(task, 5)
    assert socket.sent.qsize() == 0


async def test_a_send_that_waits_goes_on_later_and_newer_follows_in_order():
    socket = HeldSocket()
    stream, task = await started(socket)

    socket.held.clear()
    stream.on_event({"type": "called", "seq": 2}, view(2, 4))
    stream.on_event({"type": "called", "seq": 3}, view(3, 3))  # while the first still waits
    await asyncio.sleep(0)
    assert socket.sent.qsize() == 0
    socket.held.set()
    assert (await socket.frame())["people_ahead"] == 4
    assert (await socket.frame())["people_ahead"] == 3
    # an old view after the newer one was sent changes nothing
    stream.on_event({"type": "waiting", "seq": 2}, view(2, 4))
    stream.on_event({"type": "called", "seq": 4}, view(4, 0, "called"))
    assert (await socket.frame())["status"] == "called"
    socket.inbox.put_nowait(None)
    await asyncio.wait_for(task, 5)
    assert socket.sent.qsize() == 0


async def test_a_frame_that_waits_goes_out_before_the_next_whatever_the_socket_wakes_first():
    socket = NewestFirstSocket()
    stream, task = await started(socket)

    socket.holding = True
    stream.on_event({"type": "called", "seq": 2}, view(2, 4))  # begun in the hub's turn
    stream.on_event({"type": "called", "seq": 3}, view(3, 3))  # the render task's
    for _ in range(5):
        await asyncio.sleep(0)  # the render task has had its turns
    socket.release()
    assert (await socket.frame())["people_ahead"] == 4
    assert (await socket.frame())["people_ahead"] == 3
    socket.inbox.put_nowait(None)
    await asyncio.wait_for(task, 5)
    assert socket.sent.qsize() == 0


async def test_a_send_that_fails_in_the_hubs_turn_ends_the_stream():
    socket = StandInSocket()
    stream, task = await started(socket)

    async def broken(text: str) -> None:
        raise OSError("the connection is gone")

    socket.send_text = broken
    stream.on_event({"type": "called", "seq": 2}, view(2, 4))
    await asyncio.wait_for(task, 5)  # ended without the client sending anything
    assert stream.closed


async def test_a_send_that_waits_and_then_fails_ends_the_stream():
    socket = HeldSocket()
    stream, task = await started(socket)

    async def lost(text: str) -> None:
        await socket.held.wait()
        raise OSError("the connection is gone")

    socket.held.clear()
    socket.send_text = lost
    stream.on_event({"type": "called", "seq": 2}, view(2, 4))  # waits in the hub's turn
    await asyncio.sleep(0)
    assert not task.done()
    socket.held.set()
    await asyncio.wait_for(task, 5)  # ended without the client sending anything
    assert stream.closed


async def test_nothing_is_sent_after_the_close_frame():
    socket = StandInSocket()
    stream, task = await started(socket)

    await stream.close(4404, "There is no ticket for this link any more.")
    assert (await socket.frame())["closed"] == 4404
    stream.on_event({"type": "called", "seq": 2}, view(2, 4))  # in the hub's turn
    await stream.send({"type": "ping"})  # from a task of the stream's
    socket.inbox.put_nowait(None)  # the client answers the close
    await asyncio.wait_for(task, 5)
    assert socket.sent.qsize() == 0


async def test_run_now_runs_until_the_first_wait_and_the_rest_in_a_task():
    steps: list[str] = []
    gate = asyncio.Event()

    async def quick() -> None:
        steps.append("quick")

    async def slow() -> None:
        steps.append("slow begun")
        try:
            await gate.wait()
            steps.append("slow done")
        finally:
            steps.append("slow cleaned up")

    assert run_now(quick()) is None
    assert steps == ["quick"]

    rest = run_now(slow())
    assert steps == ["quick", "slow begun"] and rest is not None
    gate.set()
    await asyncio.wait_for(rest, 5)
    assert steps[-2:] == ["slow done", "slow cleaned up"]

    gate.clear()
    steps.clear()
    rest = run_now(slow())
    await asyncio.sleep(0)
    rest.cancel()
    await asyncio.gather(rest, return_exceptions=True)
    assert steps == ["slow begun", "slow cleaned up"]  # the cancel reached the coroutine
