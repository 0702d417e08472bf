"""The public live sockets: `/ws/locations/{L}/display` (the wall display) and
`/ws/tickets/{token}` (the phone view); and the displays online in this process.

Both are built like the counter socket (aufruf.display.sockets): join the location's hub (its
one channel subscription in this process) first, then a snapshot with the current `seq`, then
what came after; a receive loop notices the client leaving, a ping after silence keeps the
connection honest, a periodic check against the database catches an event lost on the way, and
a RESYNC from the channels backend (aufruf.display.channels) makes the socket read what it
missed from the database.

The display forwards every event strictly in `seq` order: an event's seq beyond the last sent
plus one makes it read the missing `queue_event` rows (once per instance: `DisplayFeed` keeps
the recent events of each location and the text of each message); old and doubled seqs are
dropped. The phone view sends its ticket in the one ticket shape whenever any field differs
from the last it sent; people ahead and waits come from the shared `LocationView`, computed
once per location and event in this process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, WebSocket, get, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, SkipValidation
from sqlalchemy import select

from aufruf.auth.guards import socket_actor
from aufruf.db import Database
from aufruf.deps import ActorDep, ClockDep, DatabaseDep, SettingsDep
from aufruf.display.hub import FIRST, IN_TURN, hub_of
from aufruf.display.service import (
    LocationView,
    LocationViews,
    compact,
    public_ticket,
    views_of,
)
from aufruf.display.sockets import CounterStream, close_code, close_reason
from aufruf.errors import DomainError, NotFound
from aufruf.queue import service as queue
from aufruf.queue.api import ticket_out
from aufruf.queue.events import event_message
from aufruf.queue.model import QueueEvent
from aufruf.responses import errors

OPEN_STATUSES = frozenset({"waiting", "called", "serving"})
KEPT_EVENTS = 512  # recent events kept per location (gaps further back: a fresh snapshot)
CALL_KINDS = ("called", "recalled")


# --- the displays online ------------------------------------------------------------------


@dataclass
class DisplaySeen:
    token: int
    name: str
    location: str
    connected_at: datetime
    last_seen: float  # time.time()


class DisplayRegistry:
    """The display devices connected to this process (in memory: each instance knows its own)."""

    def __init__(self) -> None:
        self._connections: dict[str, DisplaySeen] = {}

    def connect(self, token: int, name: str, location: str, now: datetime) -> str:
        key = uuid.uuid4().hex
        self._connections[key] = DisplaySeen(token, name, location, now, time.time())
        return key

    def touch(self, key: str) -> None:
        seen = self._connections.get(key)
        if seen is not None:
            seen.last_seen = time.time()

    def disconnect(self, key: str) -> None:
        self._connections.pop(key, None)

    def online(self, location: str) -> list[dict[str, Any]]:
        by_token: dict[int, dict[str, Any]] = {}
        for seen in self._connections.values():
            if seen.location != location:
                continue
            entry = by_token.setdefault(
                seen.token,
                {"id": seen.token, "name": seen.name, "connections": 0, "connected_at": None},
            )
            entry["connections"] += 1
            since = seen.connected_at.isoformat()
            if entry["connected_at"] is None or since < entry["connected_at"]:
                entry["connected_at"] = since
            last = datetime.fromtimestamp(seen.last_seen, seen.connected_at.tzinfo).isoformat()
            entry["last_seen"] = max(entry.get("last_seen") or last, last)
        return sorted(by_token.values(), key=lambda e: e["id"])


def registry_of(app: Any) -> DisplayRegistry:
    registry = app.state.get("display_registry")
    if registry is None:
        registry = app.state["display_registry"] = DisplayRegistry()
    return registry


class DisplayOut(msgspec.Struct):
    id: int
    name: str
    connections: int
    connected_at: str
    last_seen: str


class DisplaysController(Controller):
    path = "/api/v1/locations/{location:str}/displays"
    tags = ["display"]

    @get(summary="The wall displays connected to this instance now", responses=errors(401, 403))
    async def online(
        self, location: FromPath[str], actor: ActorDep, request: Request
    ) -> list[DisplayOut]:
        actor.require("queue.read", location=location)
        return [msgspec.convert(d, DisplayOut) for d in registry_of(request.app).online(location)]


# --- the events of a location, shared by the display sockets ----------------------------


def display_message(event: dict[str, Any], waiting: dict[str, int]) -> dict[str, Any]:
    """What a wall display gets for one event: calls as calls, anything else as the new
    waiting counts (every seq is sent, so a display can see that it missed nothing)."""
    kind = event["type"]
    if kind in CALL_KINDS:
        return {
            "type": kind,
            "seq": event["seq"],
            "number": event["number"],
            "counter": event["counter"],
            "at": event["at"],
            "waiting": waiting,
        }
    return {"type": "waiting", "seq": event["seq"], "event": kind, "waiting": waiting}


def snapshot_message(view: LocationView) -> dict[str, Any]:
    return {"type": "snapshot", "seq": view.seq, "called": view.calls, "waiting": view.waiting}


class DisplayFeed:
    """The recent events of each location, as they came on the channel or, for seqs that did
    not come, as read from the database; and each message's text, made once."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._events: dict[str, OrderedDict[int, dict[str, Any]]] = {}
        self._texts: dict[str, OrderedDict[int, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def note(self, location: str, event: dict[str, Any]) -> None:
        kept = self._events.setdefault(location, OrderedDict())
        if event["seq"] not in kept:
            kept[event["seq"]] = event
            while len(kept) > KEPT_EVENTS:
                kept.popitem(last=False)

    def _missing(self, location: str, after: int, upto: int) -> list[int]:
        kept = self._events.get(location, {})
        return [seq for seq in range(after + 1, upto + 1) if seq not in kept]

    async def fill(self, location: str, after: int, upto: int) -> None:
        """Read the events in (after, upto] that did not come on the channel."""
        if not self._missing(location, after, upto):
            return
        async with self._locks.setdefault(location, asyncio.Lock()):
            missing = self._missing(location, after, upto)  # another socket may have read them
            if not missing:
                return
            async with self.db.read() as session:
                rows = await session.scalars(
                    select(QueueEvent)
                    .where(
                        QueueEvent.location_id == location,
                        QueueEvent.seq >= missing[0],
                        QueueEvent.seq <= missing[-1],
                    )
                    .order_by(QueueEvent.seq)
                )
                for row in rows:
                    self.note(location, event_message(row))

    async def texts(
        self, location: str, after: int, upto: int, view: LocationView
    ) -> list[tuple[int, str]] | None:
        """The messages of seqs after+1 … upto, in order; None when they cannot all be had
        (too far back, or not in the database): the socket then sends a snapshot."""
        if upto - after > KEPT_EVENTS:
            return None
        await self.fill(location, after, upto)
        kept = self._events.get(location, OrderedDict())
        texts = self._texts.setdefault(location, OrderedDict())
        out: list[tuple[int, str]] = []
        for seq in range(after + 1, upto + 1):
            text = texts.get(seq)
            if text is None:
                event = kept.get(seq)
                if event is None:
                    return None
                text = texts[seq] = compact(display_message(event, view.waiting))
                while len(texts) > KEPT_EVENTS:
                    texts.popitem(last=False)
            out.append((seq, text))
        return out


def feed_of(app: Any) -> DisplayFeed:
    feed = app.state.get("display_feed")
    if feed is None:
        feed = app.state["display_feed"] = DisplayFeed(app.state["db"])
    return feed


# --- the wall display's socket --------------------------------------------------------------


class DisplayStream(CounterStream):
    """A wall display's socket after it was accepted: the snapshot, then every event in seq
    order (the receive loop, pings and periodic check are the counter socket's)."""

    kind = "display"
    phase = FIRST  # on the wall before the phones have theirs

    def __init__(
        self,
        socket: WebSocket,
        location: str,
        views: LocationViews,
        feed: DisplayFeed,
        registry: DisplayRegistry | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(socket, location, location, views)
        self.feed = feed
        self.registry = registry
        self.device = device

    def heard(self, message: Any) -> None:
        if self.registry is not None and self.device is not None:
            self.registry.touch(self.device)

    async def _write_text(self, text: str, seq: int) -> None:
        async with self._send_lock:
            if seq > self.sent_seq:  # checked and sent in one step: never the same seq twice
                await self._send_text(text)
                self.sent_seq = seq

    async def send_state(self, view: LocationView) -> bool:
        """The first time the snapshot; later (the periodic check) a catch-up to `view.seq`
        through the event rows, so that nothing is skipped."""
        if self.sent_seq < 0:
            await self._write_text(compact(snapshot_message(view)), view.seq)
        elif view.seq > max(self.seen_seq, self.sent_seq):
            self.seen_seq = view.seq
            self.news.set()
        return True

    def on_event(self, message: dict[str, Any], view: LocationView | None = None) -> None:
        if isinstance(message.get("seq"), int):
            self.feed.note(self.location, message)
        super().on_event(message, view)

    async def render(self) -> None:
        while True:
            await self.news.wait()
            self.news.clear()
            while self.seen_seq > self.sent_seq:
                target = self.seen_seq
                view = await self.view_for(target)
                texts = await self.feed.texts(self.location, self.sent_seq, target, view)
                if texts is None:  # cannot be filled: start over from a snapshot
                    async with self._send_lock:
                        await self._write(snapshot_message(view))
                        self.sent_seq = max(self.sent_seq, view.seq)
                    continue
                for seq, text in texts:
                    await self._write_text(text, seq)


async def existing_location(db: Database, location: str) -> None:
    """Raises NotFound unless `location` is an active location (one read outside any
    session, as queue.ticket_place: every display checks it as it connects and resyncs)."""
    active = await db.peek("SELECT active FROM location WHERE id = $1", location)
    if not active:
        raise NotFound(f"There is no location {location!r}.")


@websocket("/ws/locations/{location:str}/display", name="display-socket")
async def display_socket(
    socket: WebSocket,
    location: FromPath[str],
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    channels: NamedDependency[SkipValidation[ChannelsPlugin]],
) -> None:
    """What hangs on the wall, live (public; `?token=` of a display registers the device)."""
    registry = registry_of(socket.app)
    device = None
    try:
        await existing_location(db, location)
        if socket.query_params.get("token"):
            actor = await socket_actor(socket, db, clock, settings)
            actor.require("display.read", location=location)
            if actor.role == "display":
                device = registry.connect(actor.id, actor.name, location, clock.now())
    except DomainError as refused:
        await socket.accept()
        await socket.close(code=close_code(refused), reason=close_reason(refused.detail))
        return

    async def still_there() -> None:
        await existing_location(db, location)

    await socket.accept()
    views = views_of(socket.app)
    stream = DisplayStream(socket, location, views, feed_of(socket.app), registry, device)
    try:
        async with hub_of(socket.app, channels, views).joined(location, stream):
            await stream.run(None, still_there)
    except WebSocketDisconnect:
        pass
    finally:
        if device is not None:
            registry.disconnect(device)


# --- the phone view's socket ------------------------------------------------------------------


class TicketStream(CounterStream):
    """A phone view's socket: the ticket whenever any field of it changed. Open tickets come
    from the shared view; a ticket that left the line is read once when it leaves."""

    kind = "ticket"
    phase = IN_TURN  # sends in the LocationHub's turn (deliver_now)

    def __init__(self, socket: WebSocket, ticket_id: int, location: str, views: LocationViews):
        super().__init__(socket, str(ticket_id), location, views)
        self.ticket_id = ticket_id
        self.last: str | None = None  # the last message sent
        self.last_status: str | None = None

    async def _closed_ticket(self) -> dict[str, Any] | None:
        async with self.views.db.read() as session:
            try:
                ticket = await queue.get_ticket(session, self.ticket_id)
            except NotFound:
                return None
            return msgspec.to_builtins(await ticket_out(session, ticket, self.views.clock.now()))

    def on_event(self, message: dict[str, Any], view: LocationView | None = None) -> None:
        seq = message.get("seq")
        if isinstance(seq, int) and view is not None and self.deliver_now(seq, view):
            return
        super().on_event(message, view)

    def _gone_for_good(self) -> bool:
        """Whether the last message sent said the ticket left the line (it cannot change)."""
        return self.last_status is not None and self.last_status not in OPEN_STATUSES

    def deliver_now(self, seq: int, view: LocationView) -> bool:
        """Send the ticket's message from `view` (of event `seq`) in the hub's turn; False if
        the render task is to: while something else is being sent, or when the ticket has
        just left the line (it is read once then)."""
        if not self.may_deliver_now(seq, view):
            return False
        found = view.public_message(self.ticket_id)
        if found is None and not self._gone_for_good():
            return False
        self._keep(view)
        self.seen_seq = max(self.seen_seq, seq)  # nothing left for the render task
        if view.seq < self.sent_seq:
            return True
        if found is not None and found[0] != self.last:
            self.write_now(found[0])
            self.last, self.last_status = found
        self.sent_seq = view.seq
        return True

    async def send_state(self, view: LocationView) -> bool:
        if view.seq < self.sent_seq:
            return True  # a newer view was sent meanwhile (in the hub's turn)
        found = view.public_message(self.ticket_id)
        if found is not None:
            text, status = found
        else:
            if self._gone_for_good():
                self.sent_seq = max(self.sent_seq, view.seq)
                return True  # left the line earlier and not back: nothing can have changed
            shape = await self._closed_ticket()
            if shape is None:
                await self.close(4404, "There is no ticket for this link any more.")
                return False
            text, status = compact(public_ticket(shape)), shape["status"]
        async with self._send_lock:
            if text != self.last:
                await self._send_text(text)
                self.last, self.last_status = text, status
            self.sent_seq = max(self.sent_seq, view.seq)
        return True


@websocket("/ws/tickets/{token:str}", name="ticket-socket")
async def ticket_socket(
    socket: WebSocket,
    token: FromPath[str],
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    channels: NamedDependency[SkipValidation[ChannelsPlugin]],
) -> None:
    """The ticket behind a phone-view link, live (public: the token is the secret)."""

    async def admitted() -> tuple[int, str]:
        return await queue.ticket_place(db, settings.secret_key, token)

    try:
        ticket_id, location = await admitted()
    except DomainError as refused:
        await socket.accept()
        await socket.close(code=close_code(refused), reason=close_reason(refused.detail))
        return
    await socket.accept()
    views = views_of(socket.app)
    stream = TicketStream(socket, ticket_id, location, views)
    try:
        async with hub_of(socket.app, channels, views).joined(location, stream):
            await stream.run(None, admitted)
    except WebSocketDisconnect:
        pass
