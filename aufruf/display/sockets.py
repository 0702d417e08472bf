"""`/ws/counters/{C}`: a counter's state and the queue it serves, live, for the clerk's desk.

The socket joins its location's LocationHub first (aufruf.display.hub: one channel subscription
per location and process, shared by all sockets), then sends a snapshot with the location's
current `seq`; after that every event with a higher seq makes it send a fresh state
of the same shape, read from the database (never from the event alone: a missed or doubled
event cannot make the desk wrong). Duplicates and old seqs are dropped; a burst of events
becomes one state.

Three small tasks live as long as the socket (four with a subscription of its own), and the
first to end ends them all:
- `receive`: reads what the client sends (`{"type": "ping"}` gets a pong) and so notices the
  client going away;
- `on_event`, called by the hub, notes the highest seq seen (with a subscription of the
  stream's own, as in tests, a `follow` task reads the channel and does the same);
- `render`: sends a state whenever that seq is ahead of the last one sent;
- `keep_alive`: a ping after HEARTBEAT_SECONDS of silence; every RECHECK_SECONDS a check of
  the credentials (a revoked token or a closed session closes the socket) and of the
  location's seq (a state is sent if an event was lost on the way).
The socket leaves the hub in `finally` (the last to leave ends the subscription), the tasks are
cancelled and awaited, and no database session is held in between.

Close codes: 4401 not signed in (or no longer), 4403 not allowed here, 4404 no such counter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, SkipValidation

from aufruf.auth.guards import socket_actor
from aufruf.deps import ClockDep, DatabaseDep, SettingsDep
from aufruf.display.channels import is_resync
from aufruf.display.hub import AFTER, hub_of
from aufruf.display.service import LocationView, LocationViews, compact, views_of
from aufruf.errors import DomainError, Forbidden, NotFound, Unauthorized
from aufruf.offices.model import Counter

log = logging.getLogger("aufruf.display")

HEARTBEAT_SECONDS = 20.0
RECHECK_SECONDS = 60.0

CLOSE_CODES: dict[type[DomainError], int] = {Unauthorized: 4401, Forbidden: 4403, NotFound: 4404}


def close_reason(text: str) -> str:
    """A close frame's reason: at most 123 bytes of UTF-8."""
    return text.encode()[:123].decode(errors="ignore")


def close_code(error: DomainError) -> int:
    return next((code for kind, code in CLOSE_CODES.items() if isinstance(error, kind)), 4400)


async def counter_location(socket: WebSocket, counter_id: str, db, clock, settings) -> str:
    """The counter's location, if this socket's actor may act at the counter; else raises
    Unauthorized, Forbidden or NotFound."""
    actor = await socket_actor(socket, db, clock, settings)
    async with db.read() as session:
        counter = await session.get(Counter, counter_id)
        location = counter.location_id if counter is not None and counter.active else None
    if location is None:
        raise NotFound(f"There is no counter {counter_id!r}.")
    actor.require("counter", location=location, counter=counter_id)
    return location


def _frame(text: str) -> dict[str, Any]:
    """A text frame as the ASGI event itself (WebSocket.send_text would only make it)."""
    return {"type": "websocket.send", "bytes": None, "text": text}


def run_now(coro: Coroutine[Any, Any, None]) -> asyncio.Future[None] | None:
    """Run `coro` at once, in the caller's turn, up to the first time it has to wait; the rest,
    if any, goes on in a task (returned). As Python 3.12's eager tasks do: the hub hands an
    event to a thousand streams, and a write to a socket that can take it never waits, so a
    task and its wake-up per socket and event cost more than the write itself."""
    try:
        waits_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_resume(coro, waits_on))


async def _resume(coro: Coroutine[Any, Any, None], waits_on: Any) -> None:
    """Drive `coro` on as its task would, from the future it is waiting on."""
    stop: BaseException | None = None
    while True:
        try:
            if waits_on is None:
                await asyncio.sleep(0)  # a bare yield: another turn
            else:
                waits_on._asyncio_future_blocking = False
                await asyncio.wait((waits_on,))
        except asyncio.CancelledError as cancelled:
            stop = cancelled
            if waits_on is not None:
                waits_on.cancel()
        try:
            waits_on = coro.send(None) if stop is None else coro.throw(stop)
        except StopIteration:
            return
        stop = None


class CounterStream:
    """One socket's life after the snapshot: see the module's docstring."""

    kind = "counter"  # for the log
    # when it hears an event in a LocationHub's pass: a desk's state, from its render task,
    # after the wall displays and the phones
    phase = AFTER

    def __init__(self, socket: WebSocket, counter_id: str, location: str, views: LocationViews):
        self.socket = socket
        self.counter_id = counter_id
        self.location = location
        self.views = views
        self.sent_seq = -1  # seq of the last state sent
        self.seen_seq = -1  # highest seq announced on the channel
        self.news = asyncio.Event()
        self.ready: LocationView | None = None  # the newest view the hub handed over
        self.last_sent = 0.0
        self.closed = False
        self._send_lock = asyncio.Lock()
        # a frame written in the hub's turn without the lock (write_now) that the socket
        # could not take at once: every send under the lock waits for it first; and how such
        # a frame ended the stream (the render task raises it)
        self._writing: asyncio.Future[None] | None = None
        self._ended: BaseException | None = None

    async def _send_text(self, text: str) -> None:
        """One frame; none once the close frame is out (the protocol allows none, and the
        server would raise)."""
        if self.closed:
            return
        await self._written_out()
        await self.socket.send(_frame(text))
        self.last_sent = asyncio.get_running_loop().time()

    def write_now(self, text: str) -> None:
        """Write one frame in the caller's turn (may_deliver_now: nothing else is being sent,
        and nothing can begin before this returns): no task, lock or coroutine of the stream's
        own per frame, which a thousand phones pay on every event. A frame the socket cannot
        take at once goes on in `_writing`; a failure ends the stream as a send of the render
        task's would."""
        try:
            writing = run_now(self.socket.send(_frame(text)))
        except Exception as error:
            self._end(error)
            return
        self.last_sent = asyncio.get_running_loop().time()
        if writing is not None:
            self._writing = writing
            writing.add_done_callback(self._written)

    async def _written_out(self) -> None:
        """Under the lock: until a frame of write_now's is out (it goes first)."""
        writing = self._writing
        if writing is not None and not writing.done():
            await asyncio.wait((writing,))

    def _written(self, writing: asyncio.Future[None]) -> None:
        if not writing.cancelled() and writing.exception() is not None:
            self._end(writing.exception())

    def _end(self, error: BaseException) -> None:
        self._ended = error
        self.news.set()

    async def _write(self, message: dict[str, Any]) -> None:
        await self._send_text(compact(message))

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self._write(message)

    async def close(self, code: int, reason: str = "") -> None:
        async with self._send_lock:
            if self.closed or self.socket.connection_state == "disconnect":
                return
            self.closed = True
            await self._written_out()
            await self.socket.close(code=code, reason=close_reason(reason))

    async def send_state(self, view: LocationView) -> bool:
        """Send the counter's state from `view`; False (and the socket closed) when the counter
        has gone."""
        message = view.counter_message(self.counter_id)
        if message is None:
            await self.close(4404, f"There is no counter {self.counter_id!r} any more.")
            return False
        async with self._send_lock:  # checked and sent in one step: never the same seq twice
            if view.seq > self.sent_seq:
                await self._write(message)
                self.sent_seq = view.seq
        return True

    async def receive(self) -> None:
        try:
            while True:
                text = await self.socket.receive_text()
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                self.heard(message)
                if isinstance(message, dict) and message.get("type") == "ping":
                    await self.send({"type": "pong"})
        except WebSocketDisconnect:
            return

    def heard(self, message: Any) -> None:
        """Called with every frame the client sends (subclasses note the device alive)."""

    async def resync(self) -> None:
        """The channel backend lost its subscription for a while (aufruf.display.channels):
        whatever was committed meanwhile is read from the database now."""
        view = await self.views.current(self.location)
        self.heard_seq(view.seq)

    def heard_seq(self, seq: int, view: LocationView | None = None) -> None:
        """The location has reached `seq`: the render task sends what is new (from `view`,
        when the LocationHub has computed it for all its streams)."""
        if view is not None:
            self._keep(view)
        if seq > max(self.seen_seq, self.sent_seq):
            self.seen_seq = seq
            self.news.set()

    def _keep(self, view: LocationView) -> None:
        if self.ready is None or view.seq > self.ready.seq:
            self.ready = view

    def on_event(self, message: dict[str, Any], view: LocationView | None = None) -> None:
        """An event of the location, parsed (by the LocationHub, once for all its streams)."""
        seq = message.get("seq")
        if isinstance(seq, int):
            self.heard_seq(seq, view)

    async def view_for(self, seq: int) -> LocationView:
        """A view reflecting `seq`: the one handed over by the hub if it does, else the
        shared one of LocationViews."""
        ready = self.ready
        if ready is not None and ready.seq >= seq:
            return ready
        return await self.views.at_least(self.location, seq)

    async def follow(self, events) -> None:
        """Events from a subscription of this stream's own (the sockets share one through
        aufruf.display.hub)."""
        async for raw in events:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if is_resync(message):
                await self.resync()
                continue
            self.on_event(message)

    def may_deliver_now(self, seq: int, view: LocationView) -> bool:
        """Whether `view` (of event `seq`) may be sent in the hub's turn: nothing else is
        being sent, the snapshot is out, the view reflects the event, the stream goes on."""
        writing = self._writing
        busy = self._send_lock.locked() or (writing is not None and not writing.done())
        over = self.closed or self._ended is not None
        return not (busy or over or self.sent_seq < 0 or view.seq < seq)

    async def render(self) -> None:
        while True:
            await self.news.wait()
            self.news.clear()
            if self._ended is not None:  # a frame of the hub's turn failed
                raise self._ended
            if self.seen_seq <= self.sent_seq:
                continue  # an old or doubled event: already reflected
            view = await self.view_for(self.seen_seq)
            if not await self.send_state(view):
                return

    async def keep_alive(self, recheck) -> None:
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            now = loop.time()
            if now - checked >= RECHECK_SECONDS:
                checked = now
                try:
                    await recheck()
                except DomainError as lost:
                    await self.close(close_code(lost), lost.detail)
                    return
                # an event lost on the way (litestar#4894) shows at the latest now
                if not await self.send_state(await self.views.current(self.location)):
                    return
            if now - self.last_sent >= HEARTBEAT_SECONDS:
                await self.send({"type": "ping"})
            wake = min(self.last_sent + HEARTBEAT_SECONDS, checked + RECHECK_SECONDS)
            await asyncio.sleep(max(0.0, wake - loop.time()))

    async def run(self, subscriber, recheck) -> None:
        """Snapshot, then live until the client leaves. Events come from `subscriber` (a
        channels subscription of this stream's own) or, with None, through `on_event` from
        the LocationHub the stream has joined."""
        if not await self.send_state(await self.views.current(self.location)):
            return
        tasks = [
            asyncio.create_task(self.receive(), name="receive"),
            asyncio.create_task(self.render(), name="render"),
            asyncio.create_task(self.keep_alive(recheck), name="keep_alive"),
        ]
        if subscriber is not None:
            tasks.append(asyncio.create_task(self.follow(subscriber.iter_events()), name="follow"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._writing is not None:
                tasks.append(self._writing)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        failed = False
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect | OSError):
                failed = True
                log.error(
                    "%s socket %s: %s failed",
                    self.kind,
                    self.counter_id,
                    task.get_name(),
                    exc_info=error,
                )
        # whatever ended first, close what is still open (nothing if the client left)
        await self.close(1011 if failed else 1000)


@websocket("/ws/counters/{counter:str}", name="counter-socket")
async def counter_socket(
    socket: WebSocket,
    counter: FromPath[str],
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    channels: NamedDependency[SkipValidation[ChannelsPlugin]],
) -> None:
    """The counter's state and the queue it serves, live (clerk: the action `counter`)."""

    async def admitted() -> str:
        return await counter_location(socket, counter, db, clock, settings)

    try:
        location = await admitted()
    except DomainError as refused:
        # accepted first so that the browser sees the close code (a refused upgrade is 1006)
        await socket.accept()
        await socket.close(code=close_code(refused), reason=close_reason(refused.detail))
        return
    await socket.accept()
    views = views_of(socket.app)
    stream = CounterStream(socket, counter, location, views)
    try:
        async with hub_of(socket.app, channels, views).joined(location, stream):
            await stream.run(None, admitted)
    except WebSocketDisconnect:
        pass  # gone while the snapshot was being sent
