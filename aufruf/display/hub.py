"""One channel subscription per location and process, shared by every live socket there.

With a subscription per socket, a thousand phones following one location meant that every
event was queued a thousand times, woke a thousand tasks and was parsed from JSON a thousand
times. `LocationHub` subscribes once per location while any socket follows it, parses each
message once, computes the location's view for it once (LocationViews) and hands both to every
registered stream synchronously (`on_event`), so an event costs a socket one wake-up: its
render task, when there is something to send (a phone's stream sends in the hub's turn, with
no wake-up at all). Events that arrive while a view is read are handed over with it in the
same pass, in three phases (a stream's `phase`): the wall displays hear first and send in
the turn the hub then gives up (FIRST); then the phones, which send in the hub's turn
(IN_TURN); then the desks (AFTER), whose render tasks send once the phones have had theirs:
the clerk who called has the answer already, and a desk's message, the counter's whole
queue, costs many phones' worth of encoding and writing. A RESYNC from the
channels backend (aufruf.display.channels) is answered once per location: the location's seq
is read once from the database and handed to every stream, which then catches up as after a gap.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from litestar.channels import ChannelsPlugin

from aufruf.display.channels import is_resync
from aufruf.display.service import LocationView, LocationViews
from aufruf.queue.events import location_channel

log = logging.getLogger("aufruf.display")


# when a stream hears an event (its class's `phase`; FIRST without one): see the docstring
FIRST, IN_TURN, AFTER = 0, 1, 2


class Listener(Protocol):
    """A live stream; one of phase IN_TURN sends its state in the hub's turn and, of the
    events that came together, hears the newest only."""

    def on_event(self, message: dict[str, Any], view: LocationView | None) -> None: ...

    def heard_seq(self, seq: int, view: LocationView | None) -> None: ...


class LocationHub:
    """The streams following each location in this process, and their one subscription."""

    def __init__(self, channels: ChannelsPlugin, views: LocationViews) -> None:
        self.channels = channels
        self.views = views
        self._streams: dict[str, dict[int, set[Listener]]] = {}  # by location, then phase
        self._feeds: dict[str, tuple[Any, asyncio.Task]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def following(self, location: str) -> int:
        """How many streams follow `location` now."""
        return sum(len(streams) for streams in self._streams.get(location, {}).values())

    @asynccontextmanager
    async def joined(self, location: str, stream: Listener) -> AsyncIterator[None]:
        """`stream` hears every event of `location` published from now until the block ends."""
        lock = self._locks.setdefault(location, asyncio.Lock())
        async with lock:
            if location not in self._feeds:
                subscriber = await self.channels.subscribe([location_channel(location)])
                task = asyncio.create_task(self._dispatch(location, subscriber))
                self._feeds[location] = (subscriber, task)
            phases = self._streams.setdefault(location, {})
            phases.setdefault(_phase(stream), set()).add(stream)
        try:
            yield
        finally:
            await asyncio.shield(self._leave(location, stream))

    async def _leave(self, location: str, stream: Listener) -> None:
        async with self._locks[location]:
            phases = self._streams.get(location, {})
            phases.get(_phase(stream), set()).discard(stream)
            if any(phases.values()) or location not in self._feeds:
                return
            del self._streams[location]
            subscriber, task = self._feeds.pop(location)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.channels.unsubscribe(subscriber)

    async def _dispatch(self, location: str, subscriber: Any) -> None:
        events = subscriber.iter_events()
        async for raw in events:
            message = _parsed(raw)
            if message is None:
                continue
            if is_resync(message):
                await self._resync(location)
                continue
            view = await self._view(location, message.get("seq"))
            # the events that came while the view was read (mostly the rest of the same
            # transaction: a call's "done" and "called") are handed over with it, in one pass
            # over the streams: a wall display then gets the call with the first pass, not
            # after every phone has had its message
            batch, resync, ended = [message], False, False
            while not resync and subscriber.qsize:  # a property
                try:
                    more = _parsed(await anext(events))
                except StopAsyncIteration:
                    ended = True
                    break
                if more is not None:
                    resync = is_resync(more)
                    if not resync:
                        batch.append(more)
            # the wall displays first, and their messages out (their render tasks run in the
            # turn given up here), then the phones, which send in this turn: a call is on the
            # wall before a thousand phones have had theirs
            self._hand(location, batch, view, FIRST)
            await asyncio.sleep(0)
            # a stream that sends in this turn sends its state from the view: the newest
            # event is all it needs to hear
            self._hand(location, [max(batch, key=_seq)], view, IN_TURN)
            self._hand(location, batch, view, AFTER)  # the desks send when this turn ends
            if resync:
                await self._resync(location)
            if ended:
                return

    def _hand(
        self, location: str, batch: list[dict[str, Any]], view: LocationView | None, phase: int
    ) -> None:
        """`batch` and its view to the streams of `phase`."""
        for stream in list(self._streams.get(location, {}).get(phase, ())):
            try:
                for each in batch:
                    stream.on_event(each, view)
            except Exception:  # one stream's fault must not silence the others
                log.exception("a live stream of %s failed on an event", location)

    async def _view(self, location: str, seq: Any) -> LocationView | None:
        """The location's view at `seq`, computed once here for every stream (else each of
        a thousand render tasks would wait for the same computation on its own)."""
        if not isinstance(seq, int) or not self.following(location):
            return None
        try:
            return await self.views.at_least(location, seq)
        except Exception:  # the streams then ask for it themselves
            log.exception("the view of %s at %s could not be read", location, seq)
            return None

    async def _resync(self, location: str) -> None:
        try:
            view = await self.views.current(location)
        except Exception:  # the database may be restarting too: the periodic check catches up
            log.exception("resync of %s failed", location)
            return
        phases = self._streams.get(location, {})
        for stream in [stream for phase in sorted(phases) for stream in phases[phase]]:
            try:
                stream.heard_seq(view.seq, view)
            except Exception:  # as in _hand: the others still catch up
                log.exception("a live stream of %s failed on a resync", location)


def _phase(stream: Listener) -> int:
    return getattr(stream, "phase", FIRST)


def _seq(message: dict[str, Any]) -> int:
    seq = message.get("seq")
    return seq if isinstance(seq, int) else -1


def _parsed(raw: bytes | str) -> dict[str, Any] | None:
    """A channel message as a dict, or None if it is not one."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def hub_of(app: Any, channels: ChannelsPlugin, views: LocationViews) -> LocationHub:
    """The app's LocationHub (made on first use)."""
    hub = app.state.get("display_hub")
    if hub is None:
        hub = app.state["display_hub"] = LocationHub(channels, views)
    return hub
