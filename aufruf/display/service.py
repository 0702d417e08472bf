"""What the live views show of a location, read from the database in short read transactions.

`location_view` computes the whole picture of a location at one `seq`: every counter with its
current ticket (the shape of GET /api/v1/locations/{L}/counters), the waiting line in call
order, each counter's part of it, and the counts per service. `LocationViews` shares that
picture between all sockets of a location in this process, so an event costs one computation
per location, not one per socket (ARCHITECTURE.md: derived figures once per event and instance).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking import service as booking
from aufruf.booking.model import Appointment
from aufruf.clock import Clock
from aufruf.db import Database, driver_connection
from aufruf.errors import NotFound
from aufruf.offices import service as offices
from aufruf.offices.model import Location
from aufruf.queue import logic, postgres
from aufruf.queue import service as queue
from aufruf.queue.api import counters_with_tickets
from aufruf.queue.model import QueueEvent, Ticket

# a view older than this is recomputed for a new socket even without an event: waits and
# estimates move with the clock
MAX_AGE_SECONDS = 30.0
# a view's waiting line is brought up to date from the previous view's by the tickets the
# events in between name; it is read whole again when the last whole read is older than this
WHOLE_LINE_SECONDS = 10.0


# a waiting ticket's part of a view that stays while its row stays: the row, the ticket as
# the call order sees it, its shape without the figures, and its phone view's message as
# the text before and after the figures (public_parts)
Part = tuple[queue.WaitingRow, logic.Waiting, dict[str, Any], tuple[str, str]]

# where a waiting ticket's phone message has its figures (the keys of public_ticket's shape)
_FIGURES = '"people_ahead":0,"estimated_wait_minutes":0'


def compact(message: dict[str, Any]) -> str:
    """A message as the live sockets send it: JSON without spaces."""
    return msgspec.json.encode(message).decode()


@dataclass(frozen=True)
class LocationView:
    """A location's queue as of `seq` (every event up to it is reflected)."""

    location: str
    seq: int
    at: datetime
    counters: dict[str, dict[str, Any]]  # counter id -> the counters endpoint's shape
    queues: Mapping[str, list[dict[str, Any]]]  # counter id -> waiting tickets it can serve
    waiting: dict[str, int]  # service id -> waiting tickets that include it
    computed: float  # time.monotonic() when read
    # for the public views (aufruf.display.public): every open ticket (waiting, called,
    # serving) in the one ticket shape, by id; and the last calls up to `seq`, newest first
    tickets: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    # the waiting tickets it was made from, by id, and when they were last read whole
    # (time.monotonic()): for the next view
    rows: dict[int, queue.WaitingRow] = field(default_factory=dict)
    rows_read: float = 0.0
    # the waiting tickets' parts that stay while their rows stay, for the next view
    parts: dict[int, Part] = field(default_factory=dict, compare=False, repr=False)
    # the line's figures (people ahead and waits by ticket id) the view was made with
    line: queue.Figures | None = field(default=None, compare=False, repr=False)
    # the phone view's message and status of each ticket asked for, made once for all its
    # sockets
    _public: dict[int, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)

    def public_message(self, ticket_id: int) -> tuple[str, str] | None:
        """The phone view's message of an open ticket (aufruf.display.public), as sent, and
        the ticket's status; None when the ticket is not open. A waiting ticket's is made
        from its kept part and its figures, without its shape."""
        found = self._public.get(ticket_id)
        if found is None:
            part, line = self.parts.get(ticket_id), self.line
            if part is not None and line is not None:  # waiting: only the figures are new
                before, after = part[3]
                ahead, minutes = line.people_ahead.get(ticket_id), line.wait_minutes.get(ticket_id)
                text = (
                    f'{before}"people_ahead":{"null" if ahead is None else ahead},'
                    f'"estimated_wait_minutes":{"null" if minutes is None else minutes}{after}'
                )
                found = text, "waiting"
            else:
                shape = self.tickets.get(ticket_id)
                if shape is None:
                    return None
                found = compact(public_ticket(shape)), shape["status"]
            self._public[ticket_id] = found
        return found

    def counter_message(self, counter_id: str) -> dict[str, Any] | None:
        """The state message of one counter (None if the counter is gone or inactive)."""
        counter = self.counters.get(counter_id)
        if counter is None:
            return None
        return {
            "type": "counter",
            "seq": self.seq,
            "at": self.at.isoformat(),
            "counter": counter,
            "queue": self.queues[counter_id],
            "waiting": self.waiting,
        }


# fields of the ticket shape that only the desk shows, or that are secrets
NOT_PUBLIC = ("arrived_at", "called_at", "token", "status_url")


def public_ticket(shape: dict[str, Any]) -> dict[str, Any]:
    """The phone view's message of a ticket in the one ticket shape."""
    return {"type": "ticket", **{k: v for k, v in shape.items() if k not in NOT_PUBLIC}}


def public_parts(shape: dict[str, Any]) -> tuple[str, str]:
    """A waiting ticket's phone message (`shape`: its shape) as the text before and after its
    figures: a view then writes a thousand of them without encoding each again. (A quote in a
    JSON string is escaped, so the keys are found only where they are keys.)"""
    text = compact(public_ticket({**shape, "people_ahead": 0, "estimated_wait_minutes": 0}))
    before, found, after = text.partition(_FIGURES)
    assert found, text
    return before, after


def _with_times(shape: dict[str, Any], ticket: Ticket) -> dict[str, Any]:
    """The ticket's public shape plus the instants a desk shows (arrival, last call)."""
    shape["arrived_at"] = ticket.arrived_at.isoformat()
    shape["called_at"] = ticket.called_at.isoformat() if ticket.called_at else None
    return shape


async def waiting_parts(
    session: AsyncSession | None,
    location_id: str,
    now: datetime,
    rows: dict[int, queue.WaitingRow],
    known: dict[int, Part] | None = None,
    context: queue.LineContext | None = None,
    booked: dict[int, dict[str, str]] | None = None,
) -> tuple[queue.Figures, dict[int, Part]]:
    """The location's figures and the parts of its waiting tickets (`rows`), by id in call
    order: each ticket's shape of ticket_out plus arrival and last call, without its figures
    (OpenTickets adds them). Made from plain rows (loading a thousand ticket objects for every
    event would cost more than all the rest), with the appointments of checked-in tickets read
    at once, and from the `known` parts of an earlier view for the rows it had too (the same
    row objects). `context`: the line's, and `booked`: the appointment parts of the rows not
    in `known`, if read (with both, no `session` is needed)."""
    known = known or {}
    kept = {i: part for i, part in known.items() if rows.get(i) is part[0]}
    made = {i: part[1] for i, part in kept.items()}
    found = await queue.figures(
        session, location_id, now, rows=list(rows.values()), made=made, context=context
    )
    if booked is None:
        booked = await _appointments(
            session,
            location_id,
            [row for i, row in rows.items() if row.appointment_id is not None and i not in kept],
        )
    parts: dict[int, Part] = {}
    for ticket_id in found.order:
        part = kept.get(ticket_id)
        if part is None:
            row = rows[ticket_id]
            base = _walk_in(row, location_id)
            if ticket_id in booked:
                base = {**base, "appointment": booked[ticket_id]}
            part = (row, row.as_waiting(), base, public_parts(base))
        parts[ticket_id] = part
    return found, parts


async def _appointments(
    session: AsyncSession, location_id: str, rows: list[queue.WaitingRow]
) -> dict[int, dict[str, str]]:
    """ticket_out's appointment part of these checked-in tickets, by ticket id: the codes
    read at once, the times as the rows have them."""
    if not rows:
        return {}
    zone = ZoneInfo((await session.get(Location, location_id)).timezone)
    found = await session.execute(
        select(Appointment.id, Appointment.code).where(
            Appointment.id.in_([row.appointment_id for row in rows])
        )
    )
    codes = {appointment_id: code for appointment_id, code in found}
    return _appointment_parts(((row, codes.get(row.appointment_id)) for row in rows), zone)


def _appointment_parts(
    rows: Iterable[tuple[queue.WaitingRow, str | None]], zone: ZoneInfo
) -> dict[int, dict[str, str]]:
    """ticket_out's appointment part of checked-in tickets (each with its appointment's code,
    None without), by ticket id."""
    return {
        row.id: {"code": code, "start": row.appointment_at.astimezone(zone).isoformat()}
        for row, code in rows
        if code is not None and row.appointment_at is not None
    }


def _walk_in(row: queue.WaitingRow, location_id: str) -> dict[str, Any]:
    """ticket_out's shape of a waiting ticket, plus arrival and last call (its figures are
    filled in for each view; an appointment's part is added by the caller)."""
    return {
        "id": row.id,
        "number": row.number,
        "status": "waiting",
        "location": location_id,
        "services": row.services,
        "people_ahead": None,
        "estimated_wait_minutes": None,
        "counter": None,
        "arrived_at": row.arrived_at.isoformat(),
        "called_at": row.called_at.isoformat() if row.called_at else None,
    }


async def location_view(
    session: AsyncSession, location_id: str, now: datetime, known: LocationView | None = None
) -> LocationView:
    """The location's view, read in `session` (one snapshot); the waiting line from `known`'s
    (an earlier view of the location) and the tickets changed since, while `known` read it
    whole less than WHOLE_LINE_SECONDS ago. On PostgreSQL its reads are one plain statement
    (_location_view_at_once)."""
    raw = await driver_connection(session)
    if raw is not None:
        return await _location_view_at_once(raw.fetchrow, location_id, now, known)
    return await _location_view_in_steps(session, location_id, now, known)


async def _location_view_in_steps(
    session: AsyncSession, location_id: str, now: datetime, known: LocationView | None
) -> LocationView:
    """location_view through the ORM, a read at a time (SQLite)."""
    # the seq first: whatever is read after it reflects at least the events up to it
    seq = await queue.current_seq(session, location_id)
    read = time.monotonic()
    if known is not None and read - known.rows_read < WHOLE_LINE_SECONDS:
        waiting, whole = await queue.waiting_rows_after(
            session, location_id, known.rows, known.seq, seq
        )
        read = read if whole else known.rows_read
    else:
        waiting = await queue.waiting_rows(session, location_id)
    rows = {row.id: row for row in waiting}
    line, parts = await waiting_parts(
        session, location_id, now, rows, known.parts if known is not None else None
    )
    counters: dict[str, dict[str, Any]] = {}
    shapes = await counters_with_tickets(session, line.desks, now, line)
    for desk, (out, current) in zip(line.desks, shapes, strict=True):
        shape = msgspec.to_builtins(out)
        if current is not None:
            _with_times(shape["current"], current)
        counters[desk.id] = shape
    calls = await last_calls(session, location_id, seq)
    return _assembled(location_id, seq, now, line, counters, calls, rows, read, parts)


async def _location_view_at_once(
    fetch_row: Callable[..., Awaitable[Sequence[Any] | None]],
    location_id: str,
    now: datetime,
    known: LocationView | None,
) -> LocationView:
    """location_view on PostgreSQL, its reads in one statement, which is one snapshot in any
    transaction or none (postgres.VIEW_CHANGED: seq, changed tickets, the line's context, the
    counters and the last calls, where eight statements in a transaction of their own were
    read for every event); the whole line (postgres.VIEW_WHOLE) instead when there is no
    recent view to bring up to date or too much changed. `fetch_row` runs a statement and
    gives its one row."""
    read = time.monotonic()
    found = None
    if known is not None and read - known.rows_read < WHOLE_LINE_SECONDS:
        found = await fetch_row(postgres.VIEW_CHANGED, location_id, known.seq, _CALL_ROWS)
        assert found is not None
        named = set(found[1])
        if found[2] or not queue.changes_are_few(known.seq, found[0], named):
            found = None
    whole = found is None
    if whole:
        found = await fetch_row(postgres.VIEW_WHOLE, location_id, -1, _CALL_ROWS)
    assert found is not None  # one row, always
    seq, records, zone = found[0], found[3], ZoneInfo(found[11])
    fresh = [queue.WaitingRow._make(record[:8]) for record in records]
    booked = _appointment_parts(zip(fresh, (r[8] for r in records), strict=True), zone)
    if whole:
        rows = {row.id: row for row in fresh}
    else:
        assert known is not None  # the changes were read from it
        rows = {row.id: row for row in queue.rows_after(known.rows, named, fresh)}
        read = known.rows_read
    line, parts = await waiting_parts(
        None,
        location_id,
        now,
        rows,
        known.parts if known is not None else None,
        queue.context_from(found[4:9]),
        booked,
    )
    counters = {
        desk.id: _counter_shape(location_id, desk, row, line, zone)
        for desk, row in zip(line.desks, found[9], strict=True)
    }
    calls = _calls_from((n, c, json.loads(d) if d else None, at) for n, c, d, at in found[10])
    return _assembled(location_id, seq, now, line, counters, calls, rows, read, parts)


def _counter_shape(
    location_id: str, desk: logic.Desk, found: Sequence[Any], line: queue.Figures, zone: ZoneInfo
) -> dict[str, Any]:
    """A counter in the counters endpoint's shape (counters_out), its current ticket with
    arrival and last call, from a counter row of postgres.VIEW."""
    (counter_id, name, status, clerk, ticket_id, number, ticket_status, arrived_at, called_at,
     at_counter, services, code, start) = found  # fmt: skip
    current = None
    if ticket_id is not None:
        waiting = ticket_status == "waiting"
        current = {
            "id": ticket_id,
            "number": number,
            "status": ticket_status,
            "location": location_id,
            "services": services,
            "people_ahead": line.people_ahead.get(ticket_id) if waiting else None,
            "estimated_wait_minutes": line.wait_minutes.get(ticket_id) if waiting else None,
            "counter": at_counter if ticket_status in ("called", "serving") else None,
        }
        if code is not None:
            current["appointment"] = {"code": code, "start": start.astimezone(zone).isoformat()}
        current["arrived_at"] = arrived_at.isoformat()
        current["called_at"] = called_at.isoformat() if called_at else None
    return {
        "id": counter_id,
        "name": name,
        "services": sorted(desk.services),
        "status": status or "closed",
        "clerk": clerk,
        "current": current,
    }


def _assembled(
    location_id: str,
    seq: int,
    now: datetime,
    line: queue.Figures,
    counters: dict[str, dict[str, Any]],
    calls: list[dict[str, Any]],
    rows: dict[int, queue.WaitingRow],
    read: float,
    parts: dict[int, Part],
) -> LocationView:
    """The view from what was read: the counts per service; every open ticket by id and each
    counter's part of the line as they are first asked for (OpenTickets, DeskQueues)."""
    # counted by service set (a few for a whole line), then by service
    sets = Tally(map(attrgetter("services"), map(itemgetter(1), parts.values())))
    waiting: Tally[str] = Tally()
    for services, count in sets.items():
        for service in services:
            waiting[service] += count
    currents = {c["current"]["id"]: c["current"] for c in counters.values() if c["current"]}
    tickets = OpenTickets(line, parts, currents)
    return LocationView(
        location=location_id,
        seq=seq,
        at=now,
        counters=counters,
        queues=DeskQueues(line.desks, tickets),
        waiting=dict(sorted(waiting.items())),
        computed=time.monotonic(),
        tickets=tickets,
        calls=calls,
        rows=rows,
        rows_read=read,
        parts=parts,
        line=line,
    )


class OpenTickets(Mapping[int, dict[str, Any]]):
    """A view's open tickets in the one ticket shape, by id: the waiting ones in call order,
    then the counters' current ones (a waiting ticket current at a counter in the counter's
    shape of it). A shape is made when first asked for: a phone needs only its figures
    (LocationView.public_message), and making a thousand shapes for every event, for the
    desks, kept the phones waiting."""

    def __init__(
        self, line: queue.Figures, parts: dict[int, Part], currents: dict[int, dict[str, Any]]
    ) -> None:
        self._line, self._parts, self._currents = line, parts, currents
        self._waiting: dict[int, dict[str, Any]] = {}

    def waiting_shape(self, ticket_id: int) -> dict[str, Any]:
        """A waiting ticket's shape in the line (KeyError for one not waiting)."""
        shape = self._waiting.get(ticket_id)
        if shape is None:
            shape = self._waiting[ticket_id] = {
                **self._parts[ticket_id][2],
                "people_ahead": self._line.people_ahead.get(ticket_id),
                "estimated_wait_minutes": self._line.wait_minutes.get(ticket_id),
            }
        return shape

    def served_by(self, desk: logic.Desk) -> list[dict[str, Any]]:
        """The shapes of the waiting tickets whose every service `desk` serves (as the call
        order had them), in call order."""
        parts, serves = self._parts, desk.services
        return [self.waiting_shape(i) for i in self._line.order if parts[i][1].services <= serves]

    def __getitem__(self, ticket_id: int) -> dict[str, Any]:
        current = self._currents.get(ticket_id)
        return current if current is not None else self.waiting_shape(ticket_id)

    def __iter__(self) -> Iterator[int]:
        yield from self._line.order
        yield from (i for i in self._currents if i not in self._parts)

    def __len__(self) -> int:
        return len(self._line.order) + sum(1 for i in self._currents if i not in self._parts)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._parts or ticket_id in self._currents


class DeskQueues(Mapping[str, list[dict[str, Any]]]):
    """Each counter's part of a view's line (the waiting tickets whose every service it
    serves, in call order), by counter id, made when a desk first asks for it."""

    def __init__(self, desks: Sequence[logic.Desk], tickets: OpenTickets) -> None:
        self._desks = {desk.id: desk for desk in desks}
        self._tickets = tickets
        self._made: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, counter_id: str) -> list[dict[str, Any]]:
        made = self._made.get(counter_id)
        if made is None:
            made = self._made[counter_id] = self._tickets.served_by(self._desks[counter_id])
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._desks)

    def __len__(self) -> int:
        return len(self._desks)


LAST_CALLS = 8
# the call and recall events read for them: a number called again takes more than one
_CALL_ROWS = LAST_CALLS * 4


async def last_calls(session: AsyncSession, location_id: str, seq: int) -> list[dict[str, Any]]:
    """The last calls (and recalls) up to `seq`, newest first, one per number: what a wall
    display lists."""
    rows = await session.execute(
        select(QueueEvent.number, QueueEvent.counter_id, QueueEvent.data, QueueEvent.at)
        .where(
            QueueEvent.location_id == location_id,
            QueueEvent.seq <= seq,
            QueueEvent.kind.in_(("called", "recalled")),
        )
        .order_by(QueueEvent.seq.desc())
        .limit(_CALL_ROWS)
    )
    return _calls_from(rows)


def _calls_from(
    rows: Iterable[tuple[str | None, str | None, dict | None, datetime]],
) -> list[dict[str, Any]]:
    """The last calls from call and recall events (number, counter id, data, at), newest
    first: one per number."""
    calls: list[dict[str, Any]] = []
    seen: set[str | None] = set()
    for number, counter_id, data, at in rows:
        if number in seen:
            continue
        seen.add(number)
        counter = (data or {}).get("counter") or counter_id
        calls.append({"number": number, "counter": counter, "at": at.isoformat()})
        if len(calls) == LAST_CALLS:
            break
    return calls


class LocationViews:
    """The latest view of each location, shared by this process's sockets and pages.

    `at_least(L, seq)` answers from the latest view when it reflects `seq`, else joins the
    computation already running for L or starts one; a socket that goes away meanwhile does not
    cancel it for the others."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._latest: dict[str, LocationView] = {}
        self._running: dict[str, asyncio.Future[LocationView]] = {}

    async def current(self, location_id: str) -> LocationView:
        """A view reflecting every event committed before this call, and not older than
        MAX_AGE_SECONDS (the seq read once for the sockets asking at once: queue.shared_seq)."""
        seq = await queue.shared_seq(self.db, location_id)
        return await self.at_least(location_id, seq, max_age=MAX_AGE_SECONDS)

    async def at_least(
        self, location_id: str, seq: int, *, max_age: float | None = None
    ) -> LocationView:
        view = self._latest.get(location_id)
        for _ in range(3):  # a running computation may have begun before `seq` was committed
            if view is not None and view.seq >= seq and not self._too_old(view, max_age):
                return view
            view = await self._refresh(location_id)
        assert view is not None
        return view

    @staticmethod
    def _too_old(view: LocationView, max_age: float | None) -> bool:
        return max_age is not None and time.monotonic() - view.computed > max_age

    async def _refresh(self, location_id: str) -> LocationView:
        running = self._running.get(location_id)
        if running is None:
            running = asyncio.ensure_future(self._compute(location_id))
            self._running[location_id] = running

            def finished(done: asyncio.Future[LocationView]) -> None:
                self._running.pop(location_id, None)
                if not done.cancelled():
                    done.exception()  # retrieved here, raised to every waiter below

            running.add_done_callback(finished)
        return await asyncio.shield(running)

    async def _compute(self, location_id: str) -> LocationView:
        known = self._latest.get(location_id)
        if self.db.is_sqlite:
            async with self.db.read() as session:
                view = await location_view(session, location_id, self.clock.now(), known)
        else:  # its one statement is one snapshot: outside any transaction (no BEGIN, COMMIT)
            read = partial(self.db.peek_row, planned_once=True)
            view = await _location_view_at_once(read, location_id, self.clock.now(), known)
        latest = self._latest.get(location_id)
        if latest is None or view.seq >= latest.seq:
            self._latest[location_id] = view
        return view


def views_of(app: Any) -> LocationViews:
    """The app's shared LocationViews (made on first use, with the app's database and clock)."""
    views = app.state.get("display_views")
    if views is None:
        views = LocationViews(app.state["db"], app.state["clock"])
        app.state["display_views"] = views
    return views


# --- the day's appointments, for the desk ------------------------------------------------


@dataclass(frozen=True)
class DayAppointment:
    code: str
    start: str
    end: str
    services: list[str]
    status: str
    ticket: str | None


async def appointments_of_day(
    session: AsyncSession, location_id: str, day: date | None, now: datetime
) -> list[DayAppointment]:
    """A location's appointments on a local day (today without `day`), by start; codes,
    times, services and states only: no names, no contact data."""
    location = await offices.get_location(session, location_id)
    if location is None or not location.active:
        raise NotFound(f"There is no location {location_id!r}.")
    zone = ZoneInfo(location.timezone)
    day = day or now.astimezone(zone).date()
    booked = await booking.appointments_on(session, location_id, day, zone)
    numbers = await queue.numbers_of_appointments(session, [a.id for a in booked])
    return [
        DayAppointment(
            code=a.code,
            start=a.start.astimezone(zone).isoformat(),
            end=a.end.astimezone(zone).isoformat(),
            services=a.services,
            status=a.status,
            ticket=numbers.get(a.id),
        )
        for a in booked
    ]
