"""What one app instance knows of a location's waiting line, per event seq, so that a drawn
ticket's figures (people ahead, estimated wait) cost a few sums instead of the whole line.

A state at seq s is exact for s: read in one snapshot, or brought there from an exact state
by the tickets this instance drew, each known with the seq of its event. A draw announces
its seq before it commits (`expect`) and settles it after (`settled`); since commit order is
seq order, a later draw waits for the earlier ones under way on this instance, and any seq
not drawn here (a call, a draw on another instance) makes the state be read again.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left, insort
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from aufruf.queue import logic
from aufruf.queue.logic import Desk, OrderRules, Serving, Waiting

if TYPE_CHECKING:
    from aufruf.db import Database


@dataclass
class LineState:
    """A location's waiting line at one seq, with per counter service set the number and the
    minutes of the tickets that set can serve."""

    seq: int
    order: OrderRules
    desks: list[Desk]
    service_minutes: dict[str, float]
    serving: dict[str, Serving]
    waiting: dict[int, Waiting] = field(default_factory=dict)
    arrivals: list[tuple[datetime, int]] = field(default_factory=list)  # sorted
    count: dict[frozenset[str], int] = field(default_factory=dict)
    minutes: dict[frozenset[str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for desk in self.desks:
            self.count.setdefault(desk.services, 0)
            self.minutes.setdefault(desk.services, 0.0)
        tickets = list(self.waiting.values())
        self.waiting = {}
        for ticket in tickets:
            self.add(ticket)

    def add(self, ticket: Waiting) -> None:
        if ticket.id in self.waiting:
            return
        self.waiting[ticket.id] = ticket
        insort(self.arrivals, (ticket.arrived_at, ticket.id))
        weight = self._weight(ticket)
        for services in self.count:
            if ticket.services <= services:
                self.count[services] += 1
                self.minutes[services] += weight

    def _weight(self, ticket: Waiting) -> float:
        return logic._minutes(ticket.services, self.service_minutes)

    def figures_of(self, ticket: Waiting, now: datetime) -> tuple[int | None, int | None]:
        """People ahead and estimated wait of a walk-in ticket drawn `now` (None, None when it
        is no longer waiting), as logic.people_ahead and logic.estimated_wait_minutes say.

        Everyone who arrived before a walk-in is ahead of it in the call order (staff
        priority, due appointments and earlier arrivals all come first), so only the tickets
        that arrived at the same instant or later need comparing."""
        if ticket.id not in self.waiting:
            return None, None
        if ticket.priority or ticket.appointment_at is not None:
            raise ValueError("figures_of is for walk-in tickets")
        key = logic.order_key(ticket, now, self.order)
        start = bisect_left(self.arrivals, (ticket.arrived_at, -1))
        later = [
            w
            for _, ticket_id in self.arrivals[start:]
            if ticket_id != ticket.id
            and logic.order_key(w := self.waiting[ticket_id], now, self.order) > key
        ]
        able = [s for s in self.count if ticket.services <= s]
        if able:
            ahead = min(self.count[s] - 1 - sum(1 for w in later if w.services <= s) for s in able)
        else:
            ahead = len(self.waiting) - 1 - len(later)
        open_desks = [d for d in self.desks if d.open and ticket.services <= d.services]
        if not open_desks:
            return ahead, None
        own = self._weight(ticket)
        work = min(
            self.minutes[s] - own - sum(self._weight(w) for w in later if w.services <= s)
            for s in {d.services for d in open_desks}
        )
        work += sum(
            logic._remaining(self.serving[d.id], now, self.service_minutes)
            for d in open_desks
            if d.id in self.serving
        )
        return ahead, max(0, math.ceil(work / len(open_desks) - 1e-9))


@dataclass
class Flight:
    """A draw under way: its seq and ticket; `done` says whether it committed."""

    seq: int
    ticket: Waiting
    done: asyncio.Future[bool]


class LineCache:
    """Line states of the locations this instance drew tickets at, and the draw rules."""

    flight_limit = 1024

    def __init__(self, db: Database | None = None) -> None:
        self.db = db  # for shared reads of the locations' rules versions
        self.rules_readers: dict[str, object] = {}
        self.states: dict[str, LineState] = {}
        self.flights: dict[str, dict[int, Flight]] = {}
        self.loading: dict[str, asyncio.Future[LineState]] = {}
        self.rules: dict[str, object] = {}  # location -> the queue service's draw rules
        # draws whose statement is under way here, seq not known yet (draw_ticket_at_once)
        self.drawing: dict[str, set[int]] = {}
        self._draws = 0
        self._moved: dict[str, asyncio.Future[None]] = {}

    def draw_begins(self, location_id: str) -> int:
        """A draw that commits as its statement ends is about to send it: its number here."""
        self._draws += 1
        self.drawing.setdefault(location_id, set()).add(self._draws)
        return self._draws

    def draw_ends(
        self, location_id: str, draw: int, seq: int | None, ticket: Waiting | None
    ) -> None:
        """That draw committed with `seq` for `ticket`, or failed (None)."""
        self.drawing[location_id].discard(draw)
        if seq is not None and ticket is not None:
            flight = self.expect(location_id, seq, ticket)
            if flight is not None:
                self.settled(location_id, flight, True)
        moved = self._moved.pop(location_id, None)
        if moved is not None and not moved.done():
            moved.set_result(None)

    def expect(self, location_id: str, seq: int, ticket: Waiting) -> Flight | None:
        """A draw under way took `seq` for `ticket` (before its commit)."""
        if location_id not in self.states:
            return None  # the next figures read the line anyway
        flights = self.flights.setdefault(location_id, {})
        if len(flights) >= self.flight_limit:
            flights.clear()
        flight = flights[seq] = Flight(seq, ticket, asyncio.get_running_loop().create_future())
        return flight

    def settled(self, location_id: str, flight: Flight, committed: bool) -> None:
        """The draw of `flight` committed, or rolled back."""
        if not flight.done.done():
            flight.done.set_result(committed)
        self._advance(location_id)

    def _advance(self, location_id: str) -> None:
        state, flights = self.states.get(location_id), self.flights.get(location_id)
        if state is None or not flights:
            return
        for seq in [s for s in flights if s <= state.seq]:
            del flights[seq]
        while (flight := flights.get(state.seq + 1)) is not None and flight.done.done():
            del flights[state.seq + 1]
            if not flight.done.result():
                del self.states[location_id]  # that seq is someone else's now
                return
            state.add(flight.ticket)
            state.seq += 1

    async def figures(
        self,
        location_id: str,
        seq: int,
        ticket: Waiting,
        now: datetime,
        load: Callable[[], Awaitable[LineState]],
    ) -> tuple[int | None, int | None]:
        """The figures of a walk-in ticket whose "issued" event has `seq` (committed), from
        a state at that seq or later."""
        # draws of this instance with an earlier seq have all begun by now
        earlier = set(self.drawing.get(location_id, ()))
        loads = 0
        while True:
            state = self.states.get(location_id)
            if state is not None and state.seq >= seq:
                return state.figures_of(ticket, now)
            flight = self.flights.get(location_id, {}).get(state.seq + 1) if state else None
            if flight is not None:
                await asyncio.shield(flight.done)  # an earlier draw of ours is committing
                self._advance(location_id)
                continue
            earlier &= self.drawing.get(location_id, set())
            if state is not None and earlier:  # the next seq may be one of theirs
                moved = self._moved.get(location_id)
                if moved is None:
                    moved = self._moved[location_id] = asyncio.get_running_loop().create_future()
                await asyncio.shield(moved)
                continue
            if loads == 16:
                return (await load()).figures_of(ticket, now)
            loads += 1
            await self._load(location_id, load)

    async def _load(self, location_id: str, load: Callable[[], Awaitable[LineState]]) -> None:
        task = self.loading.get(location_id)
        if task is None:
            task = self.loading[location_id] = asyncio.ensure_future(load())

            def forget(done: asyncio.Future) -> None:
                if self.loading.get(location_id) is done:
                    del self.loading[location_id]

            task.add_done_callback(forget)
        state = await asyncio.shield(task)
        kept = self.states.get(location_id)
        if kept is None or kept.seq < state.seq:
            self.states[location_id] = state
        self._advance(location_id)
