"""Queue transactions: tickets, check-in, counter actions. Each change is one transaction that
writes the rows and one QueueEvent with the location's next seq (taken last, under a row lock
held to commit, so commit order is seq order); the caller publishes the events after commit."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Select, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from aufruf.booking import logic as booking_logic
from aufruf.booking import service as booking
from aufruf.booking.model import Appointment, AppointmentService
from aufruf.db import Database, driver_connection
from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.offices import service as offices
from aufruf.offices.model import (
    Counter,
    CounterService,
    Kiosk,
    Location,
    LocationService,
    OpeningWindow,
    Printer,
    Service,
    ServiceGroup,
)
from aufruf.printer import service as printing
from aufruf.queue import logic, postgres
from aufruf.queue.line import LineCache, LineState
from aufruf.queue.model import (
    CounterSession,
    CounterState,
    LocationSequence,
    QueueEvent,
    Ticket,
    TicketNumber,
    TicketService,
)
from aufruf.tokens import derive_token, new_nonce, token_matches, token_row_id

TOKEN_KIND = "ticket"
NEWCOMER = 2**62  # a ticket not drawn yet, in estimates
OPEN_STATUSES = ("waiting", "called", "serving")


@dataclass(frozen=True)
class QueueRules:
    """A location's queue settings (defaults until the office file sets them)."""

    appointment_letter: str = "T"
    checkin_early_minutes: int = 60
    checkin_late_minutes: int = 15
    recall_pause_seconds: int = 30
    max_calls: int = 3
    reactivate_minutes: int = 30
    transfer_keeps_place: bool = True
    walk_in_cutoff_minutes: int = 0  # no new walk-ins this long before closing
    cutoff_by_wait: bool = False  # nor when the estimated wait would run past closing
    order: logic.OrderRules = field(default_factory=logic.OrderRules)


def queue_rules(settings: Mapping[str, Any] | None) -> QueueRules:
    """A location's queue settings (its `queue` column, as the offices file gives them)."""
    given = settings or {}
    advantage = given.get("appointment_advantage_minutes")
    defaults = QueueRules()
    return QueueRules(
        appointment_letter=given.get("appointment_letter", defaults.appointment_letter),
        checkin_early_minutes=given.get("checkin_early_minutes", defaults.checkin_early_minutes),
        checkin_late_minutes=given.get("checkin_late_minutes", defaults.checkin_late_minutes),
        recall_pause_seconds=given.get("recall_pause_seconds", defaults.recall_pause_seconds),
        max_calls=given.get("max_calls", defaults.max_calls),
        reactivate_minutes=given.get("reactivate_minutes", defaults.reactivate_minutes),
        transfer_keeps_place=given.get("transfer_keeps_place", defaults.transfer_keeps_place),
        walk_in_cutoff_minutes=given.get("walk_in_cutoff_minutes", defaults.walk_in_cutoff_minutes),
        cutoff_by_wait=given.get("cutoff_by_wait", defaults.cutoff_by_wait),
        order=logic.OrderRules(
            due_grace=timedelta(minutes=given.get("due_grace_minutes", 2)),
            appointment_advantage=timedelta(minutes=advantage) if advantage is not None else None,
        ),
    )


async def rules_at(
    session: AsyncSession, location_id: str, rules: QueueRules | None = None
) -> QueueRules:
    """The given rules, or else the location's own."""
    if rules is not None:
        return rules
    settings = await session.scalar(select(Location.queue).where(Location.id == location_id))
    return queue_rules(settings)


class NotWaiting(Conflict):
    reason = "not_waiting"


class NoCurrentTicket(Conflict):
    reason = "no_current_ticket"


@dataclass
class Change:
    """What a transaction did: the events to publish after commit."""

    events: list[QueueEvent] = field(default_factory=list)


def ticket_token(secret: str, ticket: Ticket) -> str:
    return derive_token(secret, TOKEN_KIND, ticket.id, ticket.nonce)


def _insert(session: AsyncSession):  # the dialect's insert construct
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def _location(session: AsyncSession, location_id: str) -> Location:
    location = await offices.get_location(session, location_id)
    if location is None:
        raise NotFound(f"There is no location {location_id!r}.")
    return location


def local_day(location: Location, now: datetime) -> date:
    return now.astimezone(ZoneInfo(location.timezone)).date()


# --- events ------------------------------------------------------------------------------


def an_event(
    location_id: str,
    kind: str,
    now: datetime,
    *,
    ticket: Ticket | None = None,
    services: list[str] | None = None,
    counter_id: str | None = None,
    actor: str | None = None,
    data: dict | None = None,
) -> QueueEvent:
    """An event not yet written (write_events gives it its seq)."""
    return QueueEvent(
        location_id=location_id,
        kind=kind,
        ticket_id=ticket.id if ticket else None,
        number=ticket.number if ticket else None,
        services=services or [],
        counter_id=counter_id,
        actor=actor,
        at=now,
        data=data or {},
    )


async def write_events(
    session: AsyncSession, change: Change, location_id: str, events: list[QueueEvent]
) -> None:
    """Write `events` of one location under its next seqs, in their order (the sequence row
    stays locked until commit); on PostgreSQL all in one plain statement (the events are then
    not in the session)."""
    if not events:
        return
    raw = await driver_connection(session)
    if raw is not None:
        last = await postgres.record_events(raw, location_id, events)
    else:
        stmt = _insert(session)(LocationSequence).values(location_id=location_id, seq=len(events))
        stmt = stmt.on_conflict_do_update(
            index_elements=[LocationSequence.location_id],
            set_={"seq": LocationSequence.seq + len(events)},
        ).returning(LocationSequence.seq)
        last = (await session.execute(stmt)).scalar_one()
    for k, written in enumerate(events):
        written.seq = last - len(events) + 1 + k
    if raw is None:
        session.add_all(events)
    change.events.extend(events)


async def record(
    session: AsyncSession,
    change: Change,
    location_id: str,
    kind: str,
    now: datetime,
    **details: Any,
) -> QueueEvent:
    """Write one event with the location's next seq (write_events); `details` as an_event's
    (ticket, services, counter_id, actor, data)."""
    event = an_event(location_id, kind, now, **details)
    await write_events(session, change, location_id, [event])
    return event


# --- tickets -----------------------------------------------------------------------------


async def _next_number(session: AsyncSession, location_id: str, day: date, letter: str) -> str:
    stmt = _insert(session)(TicketNumber).values(
        location_id=location_id, day=day, letter=letter, last=1
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[TicketNumber.location_id, TicketNumber.day, TicketNumber.letter],
        set_={"last": TicketNumber.last + 1},
    ).returning(TicketNumber.last)
    number = (await session.execute(stmt)).scalar_one()
    return f"{letter}{number:03d}"


async def _offered(session: AsyncSession, location_id: str) -> dict[str, tuple[int, str]]:
    """Services offered at a location: id -> (position, ticket letter)."""
    rows = await session.execute(
        select(Service.id, Service.position, ServiceGroup.letter)
        .join(LocationService, LocationService.service_id == Service.id)
        .join(ServiceGroup, ServiceGroup.id == Service.group_id)
        .where(LocationService.location_id == location_id, LocationService.active, Service.active)
    )
    return {sid: (pos, letter) for sid, pos, letter in rows}


async def _kiosk_printers(session: AsyncSession, location_id: str) -> dict[str, tuple[str, int]]:
    """The location's active kiosks with an active printer here: kiosk -> (printer, its
    deadline in seconds), as printing.kiosk_ticket_printer finds them."""
    rows = await session.execute(
        select(Kiosk.id, Printer.id, Printer.print_deadline_seconds)
        .join(Printer, Printer.id == Kiosk.printer_id)
        .where(
            Kiosk.location_id == location_id,
            Kiosk.active,
            Printer.active,
            Printer.location_id == location_id,
        )
    )
    return {kiosk: (printer, deadline) for kiosk, printer, deadline in rows}


async def walk_in_closed_reason(
    session: AsyncSession,
    location: Location,
    now: datetime,
    rules: QueueRules | None = None,
    services: list[str] | None = None,
) -> str | None:
    """Why no walk-in ticket can be drawn now, or None: the office is closed today or at
    this hour, it closes within the cut-off, or (when so configured) the estimated wait for
    `services` would run past closing."""
    rules = await rules_at(session, location.id, rules)
    zone = ZoneInfo(location.timezone)
    local = now.astimezone(zone)
    if local.date() in await offices.closed_days_of(session, location, local.date(), local.date()):
        return "The office is closed today."
    windows = await session.scalars(
        select(OpeningWindow).where(
            OpeningWindow.location_id == location.id, OpeningWindow.weekday == local.weekday()
        )
    )
    cutoff = timedelta(minutes=rules.walk_in_cutoff_minutes)
    for window in windows:
        opens = datetime.combine(local.date(), window.opens, tzinfo=zone)
        closes = datetime.combine(local.date(), window.closes, tzinfo=zone)
        if not opens <= local < closes - cutoff:
            continue
        if rules.cutoff_by_wait and services:
            found = await figures(session, location.id, now, rules, newcomer=services)
            wait = found.wait_minutes.get(NEWCOMER)
            if wait is not None and local + timedelta(minutes=wait) >= closes:
                return "No new tickets are given out now: the wait would run past closing time."
        return None
    return "No new tickets are given out now: the office is closed or closing soon."


@dataclass(frozen=True)
class DrawRules:
    """What a walk-in draw checks at a location, as of a rules version and local day (kept
    per instance in the LineCache while both are unchanged)."""

    version: int
    day: date
    location_id: str
    timezone: str
    rules: QueueRules
    offered: dict[str, tuple[int, str]]  # service -> (position, ticket letter)
    closed_today: bool
    windows: tuple[tuple[time, time], ...]  # today's opening hours, local
    # kiosk -> its active printer here and that printer's deadline in seconds
    printers: dict[str, tuple[str, int]] = field(default_factory=dict)

    def closed_reason(self, now: datetime) -> str | None:
        """As walk_in_closed_reason, for rules without the cut-off by estimated wait."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        if self.closed_today:
            return "The office is closed today."
        cutoff = timedelta(minutes=self.rules.walk_in_cutoff_minutes)
        for opens, closes in self.windows:
            if (
                datetime.combine(local.date(), opens, tzinfo=zone)
                <= local
                < datetime.combine(local.date(), closes, tzinfo=zone) - cutoff
            ):
                return None
        return "No new tickets are given out now: the office is closed or closing soon."


async def _draw_rules(
    session: AsyncSession, lines: LineCache | None, location_id: str, now: datetime
) -> DrawRules:
    if lines is not None and lines.db is not None:
        version, cached = await _cached_draw_rules(lines, location_id, now)
        if cached is not None:
            return cached
    else:
        version = await booking.rules_version(session, location_id)
    return await _load_draw_rules(session, lines, location_id, now, version)


async def _cached_draw_rules(
    lines: LineCache, location_id: str, now: datetime
) -> tuple[int, DrawRules | None]:
    """The location's rules version (a shared read) and the instance's draw rules, if they
    are of that version and of today."""
    assert lines.db is not None
    reader = lines.rules_readers.get(location_id)
    if reader is None:
        reader = booking.rules_version_reader(lines.db, location_id)
        lines.rules_readers[location_id] = reader
    version = await reader.read()
    cached = lines.rules.get(location_id)
    if isinstance(cached, DrawRules) and cached.version == version:
        if cached.day == now.astimezone(ZoneInfo(cached.timezone)).date():
            return version, cached
    return version, None


async def _load_draw_rules(
    session: AsyncSession, lines: LineCache | None, location_id: str, now: datetime, version: int
) -> DrawRules:
    location = await _location(session, location_id)
    today = local_day(location, now)
    windows = await session.scalars(
        select(OpeningWindow).where(
            OpeningWindow.location_id == location_id, OpeningWindow.weekday == today.weekday()
        )
    )
    draw = DrawRules(
        version=version,
        day=today,
        location_id=location_id,
        timezone=location.timezone,
        rules=queue_rules(location.queue),
        offered=await _offered(session, location_id),
        closed_today=today in await offices.closed_days_of(session, location, today, today),
        windows=tuple((w.opens, w.closes) for w in windows),
        printers=await _kiosk_printers(session, location_id),
    )
    if lines is not None:
        lines.rules[location_id] = draw
    return draw


async def draw_ticket(
    session: AsyncSession,
    change: Change,
    now: datetime,
    location_id: str,
    services: list[str],
    *,
    source: str,
    actor: str | None,
    kiosk_id: str | None = None,
    rules: QueueRules | None = None,
    lines: LineCache | None = None,
) -> Ticket:
    """A walk-in ticket for one or more services, numbered by the first service's letter, in
    the caller's transaction: the ticket's rows, then its "issued" event with the location's
    next seq, last (the sequence row stays locked to commit). With `lines`, the location's
    rules come from the instance's cache and its line takes the ticket in at commit."""
    draw, unique, letter = await _checked_draw(
        session, lines, location_id, now, services, source, rules
    )
    # read before the number and the seq are locked: they stay locked until the commit
    printer = await printing.kiosk_ticket_printer(session, kiosk_id, location_id)
    ticket, issued = await _issue(
        session, change, now, location_id, draw.day, unique, letter, source, actor, kiosk_id
    )
    # further rows of the draw go here, without reads
    printing.queue_kiosk_print(session, printer, ticket, now)
    if lines is not None and not session.in_nested_transaction():
        waiting = logic.Waiting(ticket.id, frozenset(unique), ticket.arrived_at)
        flight = lines.expect(location_id, issued.seq, waiting)
        if flight is not None:
            session.sync_session.info.setdefault(_DRAWN, []).append((lines, location_id, flight))
    return ticket


async def _checked_draw(
    session: AsyncSession,
    lines: LineCache | None,
    location_id: str,
    now: datetime,
    services: list[str],
    source: str,
    rules: QueueRules | None,
) -> tuple[DrawRules, list[str], str]:
    """The draw rules (with `rules` instead of the location's, if given), the services
    without repeats and the ticket letter; 400 for a service not offered, 409 `closed` when a
    kiosk may not draw now."""
    draw = await _draw_rules(session, lines, location_id, now)
    if rules is not None:
        draw = replace(draw, rules=rules)
    unique, letter = _checked_services(draw, services, source, now)
    if source == "kiosk" and draw.rules.cutoff_by_wait:
        location = await _location(session, location_id)
        closed = await walk_in_closed_reason(session, location, now, draw.rules, unique)
        if closed:
            raise Conflict(closed, reason="closed")
    return draw, unique, letter


def _checked_services(
    draw: DrawRules, services: list[str], source: str, now: datetime
) -> tuple[list[str], str]:
    """The services without repeats and the ticket letter; 400 for a service not offered,
    409 `closed` when the opening hours keep a kiosk from drawing now (the cut-off by
    estimated wait needs the line: _checked_draw)."""
    unique = list(dict.fromkeys(services))
    if not unique:
        raise InvalidInput("Choose at least one service.", field="services")
    for index, service_id in enumerate(unique):
        if service_id not in draw.offered:
            raise InvalidInput(
                f"The service {service_id!r} is not offered here.", field=f"services[{index}]"
            )
    if source == "kiosk" and not draw.rules.cutoff_by_wait:
        if closed := draw.closed_reason(now):
            raise Conflict(closed, reason="closed")
    letter = draw.offered[min(unique, key=lambda s: draw.offered[s][0])][1]
    return unique, letter


@dataclass(frozen=True)
class DrawnJob:
    """The print job a draw queued: its id and printer (its status is "queued")."""

    id: int
    printer_id: str


async def draw_ticket_at_once(
    db: Database,
    lines: LineCache,
    change: Change,
    now: datetime,
    location_id: str,
    services: list[str],
    *,
    source: str,
    actor: str | None,
    kiosk_id: str | None = None,
) -> tuple[Ticket, DrawnJob | None]:
    """draw_ticket on PostgreSQL in a transaction of its own, which is one statement that
    PostgreSQL commits as it ends (the print job on the kiosk's printer included): the number
    and sequence rows are locked only while PostgreSQL executes and commits it, however busy
    the app is meanwhile. The checks read the instance's cached rules; `change` holds the
    event, to be published by the caller."""
    _, draw = await _cached_draw_rules(lines, location_id, now)
    if draw is None or (source == "kiosk" and draw.rules.cutoff_by_wait):
        async with db.read() as session:
            draw, unique, letter = await _checked_draw(
                session, lines, location_id, now, services, source, None
            )
    else:
        unique, letter = _checked_services(draw, services, source, now)
    printer = draw.printers.get(kiosk_id) if kiosk_id is not None else None
    job = None
    if printer is not None:
        job = (printer[0], now + timedelta(seconds=printer[1]), f"kiosk:{kiosk_id}"[:120])
    values = _ticket_values(location_id, draw.day, source, kiosk_id, now)
    begun, seq, waiting = lines.draw_begins(location_id), None, None
    try:
        ticket_id, number, seq, job_id = await postgres.draw_ticket(
            db, location_id, draw.day, letter, values["nonce"], source, kiosk_id, now, unique,
            actor, job,
        )  # fmt: skip
        waiting = logic.Waiting(ticket_id, frozenset(unique), now)
    finally:
        lines.draw_ends(location_id, begun, seq, waiting)
    ticket = Ticket(id=ticket_id, number=number, **values)
    issued = QueueEvent(
        location_id=location_id, seq=seq, kind="issued", ticket_id=ticket_id, number=number,
        services=unique, counter_id=None, actor=actor, at=now, data={},
    )  # fmt: skip
    change.events.append(issued)
    return ticket, (DrawnJob(job_id, printer[0]) if printer is not None else None)


def _ticket_values(
    location_id: str,
    day: date,
    source: str,
    kiosk_id: str | None,
    now: datetime,
    appointment_id: int | None = None,
) -> dict[str, Any]:
    return dict(
        location_id=location_id,
        day=day,
        status="waiting",
        nonce=new_nonce(),
        source=source,
        kiosk_id=kiosk_id,
        appointment_id=appointment_id,
        issued_at=now,
        arrived_at=now,
        priority=0,
        counter_id=None,
        call_count=0,
        called_at=None,
        started_at=None,
        finished_at=None,
        end_reason=None,
    )


async def _issue(
    session: AsyncSession,
    change: Change,
    now: datetime,
    location_id: str,
    day: date,
    services: list[str],
    letter: str,
    source: str,
    actor: str | None,
    kiosk_id: str | None,
) -> tuple[Ticket, QueueEvent]:
    """A waiting walk-in ticket with the next number of its letter and day, its services and
    its "issued" event with the location's next seq (on PostgreSQL one statement)."""
    raw = await driver_connection(session)
    if raw is None:
        ticket = await _ticket_rows(
            session, now, location_id, day, services, letter, source, kiosk_id
        )
        issued = await record(
            session, change, location_id, "issued", now,
            ticket=ticket, services=services, actor=actor,
        )  # fmt: skip
        return ticket, issued
    values = _ticket_values(location_id, day, source, kiosk_id, now)
    ticket_id, number, seq = await postgres.issue_ticket(
        raw, location_id, day, letter, values["nonce"], source, kiosk_id, now, services, actor
    )
    ticket = Ticket(id=ticket_id, number=number, **values)
    make_transient_to_detached(ticket)
    session.add(ticket)
    issued = QueueEvent(
        location_id=location_id,
        seq=seq,
        kind="issued",
        ticket_id=ticket_id,
        number=number,
        services=services,
        counter_id=None,
        actor=actor,
        at=now,
        data={},
    )
    change.events.append(issued)
    return ticket, issued


async def _ticket_rows(
    session: AsyncSession,
    now: datetime,
    location_id: str,
    day: date,
    services: list[str],
    letter: str,
    source: str,
    kiosk_id: str | None,
    appointment_id: int | None = None,
) -> Ticket:
    """A waiting ticket with the next number of its letter and day, and its services."""
    values = _ticket_values(location_id, day, source, kiosk_id, now, appointment_id)
    ticket = Ticket(number=await _next_number(session, location_id, day, letter), **values)
    session.add(ticket)
    await session.flush()
    session.add_all([TicketService(ticket_id=ticket.id, service_id=s) for s in services])
    return ticket


_DRAWN = "aufruf.queue.drawn"  # session.info: draws to settle in the LineCache


@event.listens_for(Session, "after_commit")
def _drawn(session: Session) -> None:
    for lines, location_id, flight in session.info.pop(_DRAWN, ()):
        lines.settled(location_id, flight, True)


@event.listens_for(Session, "after_rollback")
def _not_drawn(session: Session) -> None:
    for lines, location_id, flight in session.info.pop(_DRAWN, ()):
        lines.settled(location_id, flight, False)


async def _new_ticket(
    session: AsyncSession,
    change: Change,
    now: datetime,
    location: Location,
    services: list[str],
    letter: str,
    source: str,
    actor: str | None,
    kiosk_id: str | None,
    appointment_id: int | None = None,
) -> Ticket:
    ticket = await _ticket_rows(
        session, now, location.id, local_day(location, now), services, letter, source,
        kiosk_id, appointment_id,
    )  # fmt: skip
    await record(
        session, change, location.id, "issued", now, ticket=ticket, services=services, actor=actor
    )
    await printing.print_new_ticket(session, ticket, now)  # on the kiosk's printer, if any
    return ticket


async def check_in(
    session: AsyncSession,
    change: Change,
    now: datetime,
    location_id: str,
    code: str,
    *,
    actor: str | None,
    kiosk_id: str | None = None,
    rules: QueueRules | None = None,
) -> Ticket:
    """The ticket of a booked appointment, by its code (any case, spaces ignored)."""
    location = await _location(session, location_id)
    rules = await rules_at(session, location_id, rules)
    wanted = booking_logic.normalise_code(code)
    candidates = list(
        await session.scalars(
            select(Appointment).where(Appointment.code == wanted).order_by(Appointment.id.desc())
        )
    )
    if not candidates:
        raise NotFound("There is no appointment with this code.")
    appointment = next(
        (a for a in candidates if a.status in ("pending", "confirmed", "checked_in")), candidates[0]
    )
    zone = ZoneInfo(location.timezone)
    if appointment.status == "cancelled":
        raise Conflict("This appointment was cancelled.", reason="cancelled")
    if appointment.status in ("checked_in", "completed", "no_show"):
        raise Conflict("This appointment is already checked in.", reason="already_checked_in")
    if appointment.status != "confirmed":
        raise Conflict("This appointment is not confirmed.", reason="cancelled")
    if appointment.location_id != location_id:
        raise Conflict(
            "This appointment is at another location.",
            reason="wrong_location",
            extra=[{"key": "location", "message": appointment.location_id}],
        )
    if appointment.start_at.astimezone(zone).date() != now.astimezone(zone).date():
        raise Conflict("This appointment is on another day.", reason="wrong_day")
    if now < appointment.start_at - timedelta(minutes=rules.checkin_early_minutes):
        raise Conflict("You are early: please come back closer to your time.", reason="too_early")
    if now > appointment.start_at + timedelta(minutes=rules.checkin_late_minutes):
        raise Conflict(
            "You are too late for your appointment; you can draw a ticket instead.",
            reason="too_late",
            extra=[{"key": "walk_in", "message": "offered"}],
        )
    services = list(
        await session.scalars(
            select(AppointmentService.service_id).where(
                AppointmentService.appointment_id == appointment.id
            )
        )
    )
    appointment.status = "checked_in"
    return await _new_ticket(
        session,
        change,
        now,
        location,
        services,
        rules.appointment_letter,
        "checkin",
        actor,
        kiosk_id,
        appointment.id,
    )


async def ticket_services(session: AsyncSession, ticket_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = defaultdict(list)
    if not ticket_ids:
        return result
    rows = await session.execute(
        select(TicketService.ticket_id, TicketService.service_id)
        .where(TicketService.ticket_id.in_(ticket_ids))
        .order_by(TicketService.service_id)
    )
    for ticket_id, service_id in rows:
        result[ticket_id].append(service_id)
    return result


async def ticket_by_token(
    session: AsyncSession, secret: str, token: str, *, for_update: bool = False
) -> Ticket:
    row_id = token_row_id(token)
    stmt = select(Ticket).where(Ticket.id == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = await session.scalar(stmt) if row_id is not None else None
    _check_link(secret, token, row_id, ticket.nonce if ticket is not None else None)
    return ticket


async def ticket_place(db: Database, secret: str, token: str) -> tuple[int, str]:
    """The id and location of the ticket behind a phone-view token (raises NotFound as
    ticket_by_token does), in one read outside any session: a thousand phones reconnecting
    at once (after a restart, or all resyncing when the channel backend is back) are
    admitted through the few connections of db.peek_row, where a session each had the
    engine's pool open and close hundreds of PostgreSQL connections."""
    row_id = token_row_id(token)
    found = None
    if row_id is not None:
        found = await db.peek_row("SELECT nonce, location_id FROM ticket WHERE id = $1", row_id)
    _check_link(secret, token, row_id, found[0] if found is not None else None)
    return row_id, found[1]


def _check_link(secret: str, token: str, ticket_id: int | None, nonce: str | None) -> None:
    """Raises NotFound unless `token` is the link of the ticket read for it (None: none)."""
    if nonce is None or not token_matches(secret, TOKEN_KIND, ticket_id, nonce, token):
        raise NotFound("There is no ticket for this link.")


async def get_ticket(session: AsyncSession, ticket_id: int, *, for_update: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = await session.scalar(stmt)
    if ticket is None:
        raise NotFound(f"There is no ticket {ticket_id}.")
    return ticket


async def shared_seq(db: Database, location_id: str) -> int:
    """current_seq in one plain read outside any session, shared by those asking at once
    (db.shared_row): a thousand sockets connecting or resyncing at once share a few reads,
    where a session each had the engine's pool open and close hundreds of connections."""
    found = await db.shared_row(
        "SELECT seq FROM location_sequence WHERE location_id = $1", location_id
    )
    return found[0] if found is not None else 0


async def current_seq(session: AsyncSession, location_id: str) -> int:
    """The seq of the location's last event (0 before the first)."""
    seq = await session.scalar(
        select(LocationSequence.seq).where(LocationSequence.location_id == location_id)
    )
    return seq or 0


async def numbers_of_appointments(
    session: AsyncSession, appointment_ids: list[int]
) -> dict[int, str]:
    """The ticket numbers of checked-in appointments, by appointment id."""
    if not appointment_ids:
        return {}
    rows = await session.execute(
        select(Ticket.appointment_id, Ticket.number).where(
            Ticket.appointment_id.in_(appointment_ids)
        )
    )
    return dict(rows.all())


# --- the waiting line --------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A location's waiting tickets in call order, with their derived figures."""

    waiting: list[Ticket]
    services: dict[int, list[str]]
    people_ahead: dict[int, int]
    wait_minutes: dict[int, int | None]
    desks: list[logic.Desk]


async def _desks(session: AsyncSession, location_id: str) -> list[logic.Desk]:
    counters = list(
        await session.scalars(
            select(Counter)
            .where(Counter.location_id == location_id, Counter.active)
            .order_by(Counter.position, Counter.id)
        )
    )
    served = await session.execute(
        select(CounterService.counter_id, CounterService.service_id).where(
            CounterService.counter_id.in_([c.id for c in counters])
        )
    )
    by_counter: dict[str, set[str]] = defaultdict(set)
    for counter_id, service_id in served:
        by_counter[counter_id].add(service_id)
    states = {
        s.counter_id: s.status
        for s in await session.scalars(
            select(CounterState).where(CounterState.counter_id.in_([c.id for c in counters]))
        )
    }
    return [
        logic.Desk(c.id, frozenset(by_counter[c.id]), states.get(c.id) == "open") for c in counters
    ]


async def _service_minutes(session: AsyncSession, location_id: str) -> dict[str, float]:
    configured = [
        (sid, own or base)
        for sid, own, base in await session.execute(
            select(Service.id, LocationService.duration_minutes, Service.duration_minutes)
            .join(LocationService, LocationService.service_id == Service.id)
            .where(LocationService.location_id == location_id)
        )
    ]
    recent = await session.execute(
        select(TicketService.service_id, Ticket.started_at, Ticket.called_at, Ticket.finished_at)
        .join(Ticket, Ticket.id == TicketService.ticket_id)
        .where(
            Ticket.location_id == location_id,
            Ticket.status == "done",
            Ticket.finished_at.is_not(None),
        )
        .order_by(Ticket.finished_at.desc())
        .limit(200)  # enough for the rolling window of every service
    )
    return _minutes_from(configured, recent)


def _minutes_from(
    configured: Iterable[tuple[str, int]],
    recent: Iterable[tuple[str, datetime | None, datetime | None, datetime]],
) -> dict[str, float]:
    """Minutes per service from the configured ones and the latest service times (service,
    started, called, finished; newest first)."""
    history: dict[str, list[float]] = defaultdict(list)
    for service_id, started, called, finished in recent:
        begin = started or called
        if begin is not None and finished > begin:
            history[service_id].append((finished - begin).total_seconds() / 60)
    return logic.rolling_service_minutes(history, {sid: float(m) for sid, m in configured})


def as_waiting(
    ticket: Ticket, services: list[str], appointment_at: datetime | None
) -> logic.Waiting:
    return logic.Waiting(
        id=ticket.id,
        services=frozenset(services),
        arrived_at=ticket.arrived_at,
        priority=ticket.priority,
        appointment_at=appointment_at,
    )


async def _serving(session: AsyncSession, counter_ids: list[str]) -> dict[str, logic.Serving]:
    """What each counter is busy with now, for the estimate of the remaining work."""
    rows = list(
        await session.execute(
            select(CounterState.counter_id, Ticket)
            .join(Ticket, Ticket.id == CounterState.current_ticket_id)
            .where(
                CounterState.counter_id.in_(counter_ids), Ticket.status.in_(("called", "serving"))
            )
        )
    )
    services = await ticket_services(session, [t.id for _, t in rows])
    return {
        counter_id: logic.Serving(frozenset(services[t.id]), t.started_at or t.called_at)
        for counter_id, t in rows
        if (t.started_at or t.called_at) is not None
    }


@dataclass(frozen=True)
class LineContext:
    """What a location's figures need besides its waiting tickets."""

    rules: QueueRules
    desks: list[logic.Desk]
    service_minutes: dict[str, float]
    serving: dict[str, logic.Serving]


async def line_context(
    session: AsyncSession, location_id: str, rules: QueueRules | None = None
) -> LineContext:
    """The location's rules (unless given), counters, service minutes and the work in
    progress at its counters; on PostgreSQL in one plain statement (seven through the ORM,
    for every live view)."""
    raw = await driver_connection(session)
    if raw is None:
        rules = await rules_at(session, location_id, rules)
        desks = await _desks(session, location_id)
        return LineContext(
            rules,
            desks,
            await _service_minutes(session, location_id),
            await _serving(session, [d.id for d in desks]),
        )
    return context_from(await raw.fetchrow(postgres.LINE_CONTEXT, location_id), rules)


def context_from(columns: Sequence[Any], rules: QueueRules | None = None) -> LineContext:
    """The LineContext in postgres.LINE_CONTEXT's five columns (the location's rules unless
    `rules` are given)."""
    settings, desks, configured, recent, serving = columns
    if rules is None:
        rules = queue_rules(json.loads(settings) if settings is not None else None)
    return LineContext(
        rules,
        [logic.Desk(c, frozenset(services), is_open) for c, is_open, services in desks],
        _minutes_from(configured, recent),
        {
            counter: logic.Serving(frozenset(services), since)
            for counter, since, services in serving
            if since is not None
        },
    )


@dataclass(frozen=True)
class Figures:
    """A location's waiting line as ids in call order, with the derived figures."""

    order: list[int]
    services: dict[int, list[str]]
    people_ahead: dict[int, int]
    wait_minutes: dict[int, int | None]
    desks: list[logic.Desk]


async def figures(
    session: AsyncSession | None,
    location_id: str,
    now: datetime,
    rules: QueueRules | None = None,
    *,
    newcomer: list[str] | None = None,
    rows: list[WaitingRow] | None = None,
    made: Mapping[int, logic.Waiting] | None = None,
    context: LineContext | None = None,
) -> Figures:
    """People ahead and estimated waits of every waiting ticket (read as plain rows, or
    given as `rows`, of which `made` are already made for the call order). With `newcomer`
    (services), the estimate also includes a ticket drawn now for them, under the id NEWCOMER
    (behind everyone who arrived at the same instant). `context`: the line's, when the caller
    has read it (with it and `rows`, `session` may be None)."""
    if context is None:
        context = await line_context(session, location_id, rules)
    rules, desks = context.rules, context.desks
    waiting, services = await _waiting(session, location_id, rows, made)
    ordered = logic.call_order(waiting.values(), now, rules.order)
    ahead = logic.people_ahead(ordered, desks, now, rules.order, in_order=True)
    candidates = ordered
    if newcomer:
        candidates = [*ordered, logic.Waiting(NEWCOMER, frozenset(newcomer), now)]
    minutes = logic.estimated_wait_minutes(
        candidates,
        desks,
        now,
        rules.order,
        context.service_minutes,
        context.serving,
        in_order=not newcomer,
    )
    return Figures([w.id for w in ordered], services, ahead, minutes, desks)


async def drawn_figures(
    db: Database, lines: LineCache | None, ticket: Ticket, change: Change, now: datetime
) -> Figures:
    """The figures of a walk-in ticket just drawn (committed in `change`): from the
    instance's line at the seq of its event when there is `lines`, else read afresh."""
    issued = next(e for e in change.events if e.ticket_id == ticket.id and e.kind == "issued")
    services = sorted(issued.services)
    if lines is None:
        async with db.read() as session:
            return await figures(session, ticket.location_id, now)
    me = logic.Waiting(ticket.id, frozenset(services), ticket.arrived_at)
    ahead, wait = await lines.figures(
        ticket.location_id, issued.seq, me, now, lambda: _line_state(db, ticket.location_id)
    )
    return Figures(
        order=[ticket.id] if ahead is not None else [],
        services={ticket.id: services},
        people_ahead={ticket.id: ahead} if ahead is not None else {},
        wait_minutes={ticket.id: wait} if ahead is not None else {},
        desks=[],
    )


async def _line_state(db: Database, location_id: str) -> LineState:
    """The location's waiting line with what its figures need, read in one snapshot."""
    async with db.read() as session:
        if not db.is_sqlite:  # SQLite: a read transaction is one snapshot already
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        seq = await current_seq(session, location_id)
        context = await line_context(session, location_id)
        waiting, _ = await _waiting(session, location_id)
    return LineState(
        seq,
        context.rules.order,
        context.desks,
        context.service_minutes,
        context.serving,
        waiting=waiting,
    )


async def waiting_line(
    session: AsyncSession,
    location_id: str,
    now: datetime,
    rules: QueueRules | None = None,
    *,
    newcomer: list[str] | None = None,
) -> Line:
    """The waiting tickets (rows) in call order with people ahead and estimated waits."""
    found = await figures(session, location_id, now, rules, newcomer=newcomer)
    rows = await session.scalars(select(Ticket).where(Ticket.id.in_(found.order)))
    tickets = {t.id: t for t in rows}
    return Line(
        # a ticket called between the two reads is left out of the line
        [tickets[i] for i in found.order if tickets[i].status == "waiting"],
        found.services,
        found.people_ahead,
        found.wait_minutes,
        found.desks,
    )


# --- counters ----------------------------------------------------------------------------


async def _counter(session: AsyncSession, counter_id: str) -> Counter:
    counter = await session.get(Counter, counter_id)
    if counter is None or not counter.active:
        raise NotFound(f"There is no counter {counter_id!r}.")
    return counter


_LOCKED = "aufruf.queue.locked"  # session.info: counter states read for an action (locked_counter)


async def _locked_read(
    session: AsyncSession, counter_id: str
) -> tuple[Counter, CounterState, QueueRules] | None:
    """The counter, its state row locked for this transaction and its location's rules, in
    one read; None when the state row is not there yet (made on first use) or the counter
    is not."""
    rules = select(Location.queue).where(Location.id == Counter.location_id).scalar_subquery()
    found = (
        await session.execute(
            select(Counter, CounterState, rules)
            .join(CounterState, CounterState.counter_id == Counter.id)
            .where(Counter.id == counter_id)
            .with_for_update(of=CounterState)
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1], queue_rules(found[2]))


async def locked_counter(session: AsyncSession, counter_id: str) -> Counter:
    """The active counter (NotFound otherwise) for an action at it, read with its locked
    state and its location's rules (_locked_read): the action's own read of them
    (counter_state, call_next's rules) is then served from this one, where a call-next read
    the counter, then its state and rules."""
    found = await _locked_read(session, counter_id)
    if found is None or not found[0].active:
        return await _counter(session, counter_id)  # NotFound, or the state is made later
    counter, state, rules = found
    # held here, not only in the session's (weak) identity map, until the action reads it
    session.info.setdefault(_LOCKED, {})[counter_id] = (state, rules)
    return counter


def _already_locked(
    session: AsyncSession, counter_id: str
) -> tuple[CounterState, QueueRules] | None:
    """The state and rules locked_counter read for this action, once: a later read in the
    same transaction reads the row again, as it always has."""
    return session.info.get(_LOCKED, {}).pop(counter_id, None)


async def counter_state(
    session: AsyncSession, counter_id: str, now: datetime, *, lock: bool = True
) -> CounterState:
    """The counter's live state row (made on first use), locked for this transaction."""
    if lock and (locked := _already_locked(session, counter_id)) is not None:
        return locked[0]
    stmt = _state_select(counter_id, lock)
    state = (await session.execute(stmt)).scalar_one_or_none()
    if state is not None:
        return state
    await session.execute(
        _insert(session)(CounterState)
        .values(counter_id=counter_id, status="closed", updated_at=now)
        .on_conflict_do_nothing(index_elements=[CounterState.counter_id])
    )
    return (await session.execute(stmt)).scalar_one()


def _state_select(counter_id: str, lock: bool) -> Select:
    """The read of a counter's state row, as the session then has it (locked with `lock`)."""
    stmt = select(CounterState).where(CounterState.counter_id == counter_id)
    if lock:
        stmt = stmt.with_for_update()
    return stmt.execution_options(populate_existing=True)


async def _end_current(
    session: AsyncSession,
    state: CounterState,
    counter: Counter,
    now: datetime,
    actor: str | None,
    status: str,
) -> tuple[Ticket | None, list[QueueEvent]]:
    """The counter's current ticket ended with `status`, and the counter free (in `state`),
    with the event to write for it; (None, []) when the counter has no current ticket. A
    ticket that is no longer called or serving stays as it is, with no event."""
    if state.current_ticket_id is None:
        return None, []
    ended = await session.scalars(
        update(Ticket)
        .where(Ticket.id == state.current_ticket_id, Ticket.status.in_(("called", "serving")))
        .values(status=status, finished_at=now)
        .returning(Ticket)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    ticket = ended.one_or_none()
    events: list[QueueEvent] = []
    if ticket is None:
        ticket = await get_ticket(session, state.current_ticket_id)
    else:
        if ticket.appointment_id is not None:
            await session.execute(
                update(Appointment)
                .where(Appointment.id == ticket.appointment_id)
                .values(status="completed" if status == "done" else "no_show")
            )
        events.append(_ended(counter, ticket, status, now, actor))
    state.current_ticket_id = None
    state.updated_at = now
    return ticket, events


async def _finish_current(
    session: AsyncSession,
    change: Change,
    state: CounterState,
    counter: Counter,
    now: datetime,
    actor: str | None,
    status: str = "done",
) -> Ticket | None:
    ticket, events = await _end_current(session, state, counter, now, actor, status)
    await write_events(session, change, counter.location_id, events)
    return ticket


async def call_next(
    session: AsyncSession,
    change: Change,
    counter_id: str,
    now: datetime,
    actor: str | None,
    rules: QueueRules | None = None,
) -> Ticket | None:
    """Call the next ticket this counter serves; a ticket still current here is done first.
    Two counters never get the same ticket: the ticket is taken with a conditional update
    (PostgreSQL: skipping rows another transaction holds). The events are written last, so
    the location's sequence is locked only for the end of the transaction; on PostgreSQL all
    of the call's writes are one statement (_call_in_one)."""
    counter = await _counter(session, counter_id)
    state, rules = await _state_and_rules(session, counter, now, rules)
    if state.status != "open":
        raise Conflict(f"{counter.name} is {state.status}; open it first.", reason="closed")
    if _is_postgres(session):
        return await _call_in_one(session, change, counter, state, now, actor, rules.order)
    chosen, services = await _take_first(session, counter, now, rules.order)
    _, events = await _end_current(session, state, counter, now, actor, "done")
    if chosen is not None:
        state.current_ticket_id = chosen.id
        state.updated_at = now
        events.append(_called(counter, chosen, services, now, actor))
    await write_events(session, change, counter.location_id, events)
    return chosen


async def _state_and_rules(
    session: AsyncSession, counter: Counter, now: datetime, rules: QueueRules | None
) -> tuple[CounterState, QueueRules]:
    """counter_state and rules_at in one read (when the state row exists and no rules are
    given): locked_counter's, or else _locked_read's."""
    if rules is None:
        found = _already_locked(session, counter.id)
        if found is None and (read := await _locked_read(session, counter.id)) is not None:
            found = read[1:]
        if found is not None:
            return found
    state = await counter_state(session, counter.id, now)
    return state, await rules_at(session, counter.location_id, rules)


def _ended(
    counter: Counter, ticket: Ticket, status: str, now: datetime, actor: str | None
) -> QueueEvent:
    return an_event(
        counter.location_id, status, now, ticket=ticket, counter_id=counter.id, actor=actor
    )


def _called(
    counter: Counter, ticket: Ticket, services: list[str], now: datetime, actor: str | None
) -> QueueEvent:
    return an_event(
        counter.location_id,
        "called",
        now,
        ticket=ticket,
        services=services,
        counter_id=counter.id,
        actor=actor,
        data={"counter": counter.name},
    )


async def _call_in_one(
    session: AsyncSession,
    change: Change,
    counter: Counter,
    state: CounterState,
    now: datetime,
    actor: str | None,
    order: logic.OrderRules,
) -> Ticket | None:
    """call_next's writes on PostgreSQL in one plain statement (postgres.CALL_*): the current
    ticket done, the head of the counter's line, chosen by the database in the call order of
    logic.order_key, called (a ticket another counter holds is skipped, not waited for), the
    state and both events, where the portable path sends five statements. The line is not
    read into the app (a thousand waiting tickets for every call); tests hold this order to
    logic's. The tickets and the state join the session as if read there."""
    raw = await driver_connection(session)
    assert raw is not None
    params: list[Any] = [
        counter.location_id, counter.id, now, order.due_grace, state.current_ticket_id,
        counter.name, actor,
    ]  # fmt: skip
    statement = postgres.CALL_DUE_FIRST
    if order.appointment_advantage is not None:
        statement = postgres.CALL_WITH_ADVANTAGE
        params.append(order.appointment_advantage)
    chosen: Ticket | None = None
    events: list[QueueEvent] = []
    for row in await raw.fetch(statement, *params):
        columns = dict(row.items())
        step, services, seqs = columns.pop("i"), columns.pop("services"), columns.pop("seqs")
        ticket = _in_session(session, columns)
        if step == 1:
            _completed_in_session(session, ticket.appointment_id)
            event = _ended(counter, ticket, "done", now, actor)
        else:
            chosen, event = ticket, _called(counter, ticket, services, now, actor)
        event.seq = seqs[len(events)]
        events.append(event)
    if state.current_ticket_id is not None or chosen is not None:
        set_committed_value(state, "current_ticket_id", chosen.id if chosen else None)
        set_committed_value(state, "updated_at", now)
    change.events.extend(events)
    return chosen


def _completed_in_session(session: AsyncSession, appointment_id: int | None) -> None:
    """An appointment the call completed in plain SQL, as the session has it (if it does)."""
    if appointment_id is None:
        return
    known = session.identity_map.get(session.identity_key(Appointment, appointment_id))
    if known is not None:
        set_committed_value(known, "status", "completed")


async def _take_first(
    session: AsyncSession, counter: Counter, now: datetime, order: logic.OrderRules
) -> tuple[Ticket | None, list[str]]:
    """The head of the counter's line (logic.desk_line over the waiting tickets as read),
    called to it with a conditional update; the next one if another counter took it first
    (SQLite: PostgreSQL has _call_in_one)."""
    served = frozenset(
        await session.scalars(
            select(CounterService.service_id).where(CounterService.counter_id == counter.id)
        )
    )
    rows = await waiting_rows(session, counter.location_id)
    for waiting in logic.desk_line(logic.Desk(counter.id, served), rows, now, order):
        taken = await session.scalars(
            update(Ticket)
            .where(Ticket.id == waiting.id, Ticket.status == "waiting")
            .values(status="called", counter_id=counter.id, call_count=1, called_at=now)
            .returning(Ticket)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        chosen = taken.one_or_none()
        if chosen is not None:
            return chosen, waiting.services
    return None, []


def _in_session(session: AsyncSession, columns: dict[str, Any]) -> Ticket:
    """The ticket as a plain statement wrote it (all its columns), in the session as if read
    there (the one already there, updated)."""
    for name in ("issued_at", "arrived_at", "called_at", "started_at", "finished_at"):
        if columns[name] is not None:
            columns[name] = columns[name].astimezone(UTC)  # as UTCDateTime reads it
    known = session.identity_map.get(session.identity_key(Ticket, columns["id"]))
    if known is not None:
        for name, value in columns.items():
            set_committed_value(known, name, value)
        return known
    ticket = Ticket(**columns)
    make_transient_to_detached(ticket)
    session.add(ticket)
    return ticket


class WaitingRow(NamedTuple):
    """A waiting ticket as the line and the live views read it (a tuple: a thousand are made
    for every call and every live update)."""

    id: int
    number: str
    arrived_at: datetime
    called_at: datetime | None
    priority: int
    appointment_id: int | None
    appointment_at: datetime | None
    services: list[str]  # sorted

    def as_waiting(self) -> logic.Waiting:
        return logic.Waiting(
            self.id, frozenset(self.services), self.arrived_at, self.priority, self.appointment_at
        )


async def waiting_rows(
    session: AsyncSession, location_id: str, only: Collection[int] | None = None
) -> list[WaitingRow]:
    """The location's waiting tickets by id (with `only`, those of them with these ids), read
    in one statement (two could disagree when a ticket is called between them); on PostgreSQL
    as plain SQL, one row per ticket (a thousand waiting tickets are read for every call)."""
    raw = await driver_connection(session)
    if raw is not None:
        if only is None:
            fetched = await raw.fetch(postgres.WAITING, location_id)
        else:
            fetched = await raw.fetch(postgres.WAITING_AMONG, location_id, list(only))
        return [WaitingRow._make(row) for row in fetched]
    query = (
        select(
            Ticket.id,
            Ticket.number,
            Ticket.arrived_at,
            Ticket.called_at,
            Ticket.priority,
            Ticket.appointment_id,
            Appointment.start_at,
            TicketService.service_id,
        )
        .join(TicketService, TicketService.ticket_id == Ticket.id)
        .outerjoin(Appointment, Appointment.id == Ticket.appointment_id)
        .where(Ticket.location_id == location_id, Ticket.status == "waiting")
        .order_by(Ticket.id, TicketService.service_id)
    )
    if only is not None:
        query = query.where(Ticket.id.in_(list(only)))
    found: dict[int, WaitingRow] = {}
    for *ticket, service_id in await session.execute(query):
        row = found.get(ticket[0])
        if row is None:
            row = found[ticket[0]] = WaitingRow(*ticket, [])
        row.services.append(service_id)
    return list(found.values())


# beyond this many tickets named by the events since a known line, it is read whole
CHANGED_LIMIT = 256


async def waiting_rows_after(
    session: AsyncSession,
    location_id: str,
    known: Mapping[int, WaitingRow],
    since: int,
    upto: int,
) -> tuple[list[WaitingRow], bool]:
    """The location's waiting tickets at seq `upto` (read in this snapshot), from `known`, its
    waiting tickets at seq `since`: every change of a ticket writes an event naming it, so
    only the tickets the events after `since` name are read again. All are read (and the
    second value is True) when an event names no ticket or very many tickets changed."""
    if upto == since:
        return list(known.values()), False
    named: set[int | None] = set()
    if upto > since:
        named = set(
            await session.scalars(
                select(QueueEvent.ticket_id).where(
                    QueueEvent.location_id == location_id,
                    QueueEvent.seq > since,
                    QueueEvent.seq <= upto,
                )
            )
        )
    if not changes_are_few(since, upto, named):
        return await waiting_rows(session, location_id), True
    return rows_after(known, named, await waiting_rows(session, location_id, only=named)), False


def changes_are_few(since: int, upto: int, named: Collection[int | None]) -> bool:
    """Whether the waiting tickets at seq `upto` are best made from those at `since` and the
    tickets `named` by the events in between (else they are read whole): not when the seq went
    back, an event named no ticket, or very many tickets changed."""
    return upto >= since and None not in named and len(named) <= CHANGED_LIMIT


def rows_after(
    known: Mapping[int, WaitingRow], named: Collection[int | None], changed: Iterable[WaitingRow]
) -> list[WaitingRow]:
    """The waiting tickets from `known` after the tickets `named` changed: those of them
    still waiting are `changed` (as read again)."""
    return [row for i, row in known.items() if i not in named] + list(changed)


async def _waiting(
    session: AsyncSession | None,
    location_id: str,
    rows: list[WaitingRow] | None = None,
    made: Mapping[int, logic.Waiting] | None = None,
) -> tuple[dict[int, logic.Waiting], dict[int, list[str]]]:
    """The location's waiting tickets as the call order sees them, and their services (from
    `rows` when the caller has read them; `made`: those of them already made, by id)."""
    if rows is None:
        rows = await waiting_rows(session, location_id)
    made = made or {}
    waiting = {row.id: made.get(row.id) or row.as_waiting() for row in rows}
    return waiting, {row.id: row.services for row in rows}


async def _current(
    session: AsyncSession, counter_id: str, now: datetime
) -> tuple[Counter, CounterState, Ticket]:
    counter = await _counter(session, counter_id)
    state = await counter_state(session, counter_id, now)
    if state.current_ticket_id is None:
        raise NoCurrentTicket(f"{counter.name} has no current ticket.")
    ticket = await get_ticket(session, state.current_ticket_id, for_update=True)
    return counter, state, ticket


async def recall(
    session: AsyncSession,
    change: Change,
    counter_id: str,
    now: datetime,
    actor: str | None,
    rules: QueueRules | None = None,
) -> Ticket:
    """Call the current ticket again; after the configured number of calls it is a no-show."""
    counter, state, ticket = await _current(session, counter_id, now)
    rules = await rules_at(session, counter.location_id, rules)
    if ticket.status != "called":
        raise Conflict("Only a called ticket can be called again.", reason="not_called")
    if ticket.called_at and now < ticket.called_at + timedelta(seconds=rules.recall_pause_seconds):
        wait = (
            int(
                (
                    ticket.called_at + timedelta(seconds=rules.recall_pause_seconds) - now
                ).total_seconds()
            )
            + 1
        )
        raise Conflict(f"Please wait {wait} seconds before calling again.", reason="too_soon")
    if ticket.call_count >= rules.max_calls:
        await _finish_current(session, change, state, counter, now, actor, status="no_show")
        return ticket
    ticket.call_count += 1
    ticket.called_at = now
    services = (await ticket_services(session, [ticket.id]))[ticket.id]
    await record(
        session,
        change,
        counter.location_id,
        "recalled",
        now,
        ticket=ticket,
        services=services,
        counter_id=counter_id,
        actor=actor,
        data={"counter": counter.name, "calls": ticket.call_count},
    )
    return ticket


async def start(
    session: AsyncSession, change: Change, counter_id: str, now: datetime, actor: str | None
) -> Ticket:
    counter, _, ticket = await _current(session, counter_id, now)
    if ticket.status != "called":
        raise Conflict("Only a called ticket can be started.", reason="not_called")
    ticket.status = "serving"
    ticket.started_at = now
    await record(
        session,
        change,
        counter.location_id,
        "started",
        now,
        ticket=ticket,
        counter_id=counter_id,
        actor=actor,
    )
    return ticket


async def finish(
    session: AsyncSession,
    change: Change,
    counter_id: str,
    now: datetime,
    actor: str | None,
    status: str = "done",
) -> Ticket:
    counter, state, _ = await _current(session, counter_id, now)
    ticket = await _finish_current(session, change, state, counter, now, actor, status=status)
    assert ticket is not None
    return ticket


async def transfer(
    session: AsyncSession,
    change: Change,
    counter_id: str,
    service_id: str,
    now: datetime,
    actor: str | None,
    rules: QueueRules | None = None,
) -> Ticket:
    """Send the current ticket back to the line for another service (keeping its place by its
    original arrival unless configured otherwise)."""
    counter, state, ticket = await _current(session, counter_id, now)
    rules = await rules_at(session, counter.location_id, rules)
    if service_id not in await _offered(session, counter.location_id):
        raise InvalidInput(f"The service {service_id!r} is not offered here.", field="service")
    old = (await ticket_services(session, [ticket.id]))[ticket.id]
    for row in await session.scalars(
        select(TicketService).where(TicketService.ticket_id == ticket.id)
    ):
        await session.delete(row)
    await session.flush()
    session.add(TicketService(ticket_id=ticket.id, service_id=service_id))
    ticket.status = "waiting"
    ticket.counter_id = None
    ticket.call_count = 0
    ticket.called_at = None
    ticket.started_at = None
    if not rules.transfer_keeps_place:
        ticket.arrived_at = now
    state.current_ticket_id = None
    state.updated_at = now
    await record(
        session,
        change,
        counter.location_id,
        "transferred",
        now,
        ticket=ticket,
        services=[service_id],
        counter_id=counter_id,
        actor=actor,
        data={"from": old},
    )
    return ticket


_COUNTER_MOVES = {
    "open": ({"closed", "paused"}, "open"),
    "resume": ({"paused"}, "open"),
    "pause": ({"open"}, "paused"),
    "close": ({"open", "paused"}, "closed"),
}


async def set_counter_status(
    session: AsyncSession,
    change: Change,
    counter_id: str,
    action: str,
    now: datetime,
    actor: str | None,
) -> CounterState:
    counter = await _counter(session, counter_id)
    state = await counter_state(session, counter_id, now)
    allowed, target = _COUNTER_MOVES[action]
    if state.status == target:
        return state
    if state.status not in allowed:
        raise Conflict(
            f"{counter.name} is {state.status}; it cannot {action}.",
            reason="counter_" + state.status,
        )
    if action == "close" and state.current_ticket_id is not None:
        raise Conflict(
            f"{counter.name} still has a current ticket; finish it first.", reason="has_current"
        )
    state.status = target
    state.updated_at = now
    await record(
        session,
        change,
        counter.location_id,
        "counter_" + target,
        now,
        counter_id=counter_id,
        actor=actor,
    )
    return state


async def sit(
    session: AsyncSession, change: Change, counter_id: str, clerk: str, now: datetime
) -> CounterState:
    counter = await _counter(session, counter_id)
    state = await counter_state(session, counter_id, now)
    if state.clerk == clerk:
        return state
    if state.clerk is not None:
        raise Conflict(f"{state.clerk} is seated at {counter.name}.", reason="occupied")
    seated = await session.scalar(
        select(CounterState.counter_id).where(
            CounterState.clerk == clerk, CounterState.counter_id != counter_id
        )
    )
    if seated is not None:
        raise Conflict(
            f"You are still seated at {seated}; leave it first.", reason="seated_elsewhere"
        )
    state.clerk = clerk
    state.updated_at = now
    session.add(CounterSession(counter_id=counter_id, clerk=clerk, started_at=now))
    await record(
        session,
        change,
        counter.location_id,
        "clerk_sat",
        now,
        counter_id=counter_id,
        actor=f"user:{clerk}",
    )
    return state


async def leave(
    session: AsyncSession, change: Change, counter_id: str, clerk: str, now: datetime
) -> CounterState:
    counter = await _counter(session, counter_id)
    state = await counter_state(session, counter_id, now)
    if state.clerk is None:
        return state
    state.clerk = None
    state.updated_at = now
    await session.execute(
        update(CounterSession)
        .where(CounterSession.counter_id == counter_id, CounterSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    await record(
        session,
        change,
        counter.location_id,
        "clerk_left",
        now,
        counter_id=counter_id,
        actor=f"user:{clerk}",
    )
    return state


# --- staff actions on a ticket -----------------------------------------------------------


async def set_priority(
    session: AsyncSession,
    change: Change,
    ticket_id: int,
    level: int,
    now: datetime,
    actor: str | None,
) -> Ticket:
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if ticket.status != "waiting":
        raise NotWaiting(f"Ticket {ticket.number} is not waiting.")
    ticket.priority = level
    await record(
        session,
        change,
        ticket.location_id,
        "priority",
        now,
        ticket=ticket,
        actor=actor,
        data={"level": level},
    )
    return ticket


async def reactivate(
    session: AsyncSession,
    change: Change,
    ticket_id: int,
    now: datetime,
    actor: str | None,
    rules: QueueRules | None = None,
) -> Ticket:
    ticket = await get_ticket(session, ticket_id, for_update=True)
    rules = await rules_at(session, ticket.location_id, rules)
    if ticket.status != "no_show":
        raise Conflict(f"Ticket {ticket.number} is not a no-show.", reason="not_no_show")
    if ticket.finished_at and now > ticket.finished_at + timedelta(
        minutes=rules.reactivate_minutes
    ):
        raise Conflict(
            f"A no-show can be taken back into the line within {rules.reactivate_minutes} minutes.",
            reason="too_late",
        )
    ticket.status = "waiting"
    ticket.counter_id = None
    ticket.call_count = 0
    ticket.finished_at = None
    if ticket.appointment_id is not None:
        await session.execute(
            update(Appointment)
            .where(Appointment.id == ticket.appointment_id)
            .values(status="checked_in")
        )
    await record(
        session, change, ticket.location_id, "reactivated", now, ticket=ticket, actor=actor
    )
    return ticket


async def cancel_ticket(
    session: AsyncSession, change: Change, ticket: Ticket, now: datetime, actor: str | None
) -> Ticket:
    if ticket.status == "cancelled":
        return ticket
    if ticket.status != "waiting":
        raise NotWaiting(f"Ticket {ticket.number} is not waiting.")
    ticket.status = "cancelled"
    ticket.finished_at = now
    await record(session, change, ticket.location_id, "cancelled", now, ticket=ticket, actor=actor)
    return ticket


async def close_day(
    session: AsyncSession, change: Change, location_id: str, now: datetime, reason: str
) -> int:
    """Close out what is still waiting at the end of the day, with a reason."""
    location = await _location(session, location_id)
    today = local_day(location, now)
    waiting = list(
        await session.scalars(
            select(Ticket)
            .where(
                Ticket.location_id == location_id, Ticket.status == "waiting", Ticket.day <= today
            )
            .order_by(Ticket.id)
        )
    )
    for ticket in waiting:
        ticket.status = "closed"
        ticket.finished_at = now
        ticket.end_reason = reason
        await record(
            session,
            change,
            location_id,
            "closed",
            now,
            ticket=ticket,
            actor="system",
            data={"reason": reason},
        )
    return len(waiting)


async def due_closings(session: AsyncSession, now: datetime) -> list[str]:
    """Locations whose last window of the day has ended while tickets still wait."""
    rows = await session.execute(
        select(Ticket.location_id).where(Ticket.status == "waiting").group_by(Ticket.location_id)
    )
    due = []
    for (location_id,) in rows:
        location = await offices.get_location(session, location_id)
        if location is None:
            continue
        local = now.astimezone(ZoneInfo(location.timezone))
        last_close = await session.scalar(
            select(func.max(OpeningWindow.closes)).where(
                OpeningWindow.location_id == location_id, OpeningWindow.weekday == local.weekday()
            )
        )
        oldest = await session.scalar(
            select(func.min(Ticket.day)).where(
                Ticket.location_id == location_id, Ticket.status == "waiting"
            )
        )
        if oldest < local.date() or local.time() >= (last_close or time(0)):
            due.append(location_id)
    return due


async def raise_due_events(
    session: AsyncSession, change: Change, now: datetime, rules: QueueRules | None = None
) -> datetime | None:
    """Write a "due" event for every waiting appointment whose time has come (once per
    ticket), so every view moves on time without anyone acting. Returns when the next one
    falls due, for the timer."""
    rows = list(
        await session.execute(
            select(Ticket, Appointment.start_at)
            .join(Appointment, Appointment.id == Ticket.appointment_id)
            .where(Ticket.status == "waiting")
            .order_by(Ticket.id)
        )
    )
    upcoming: list[datetime] = []
    due: dict[str, list[Ticket]] = {}
    by_location: dict[str, QueueRules] = {}
    for ticket, start in rows:
        if ticket.location_id not in by_location:
            by_location[ticket.location_id] = await rules_at(session, ticket.location_id, rules)
        due_at = start - by_location[ticket.location_id].order.due_grace
        if due_at > now:
            upcoming.append(due_at)
        else:
            due.setdefault(ticket.location_id, []).append(ticket)
    for location_id in sorted(due):
        # Another worker may be announcing the same tickets: the location's seq lock, which
        # writing the event takes anyway, makes the two take turns, and the second one then
        # sees the first one's events.
        await session.execute(
            select(LocationSequence.seq)
            .where(LocationSequence.location_id == location_id)
            .with_for_update()
        )
        tickets = due[location_id]
        announced = set(
            await session.scalars(
                select(QueueEvent.ticket_id).where(
                    QueueEvent.kind == "due", QueueEvent.ticket_id.in_([t.id for t in tickets])
                )
            )
        )
        for ticket in tickets:
            if ticket.id not in announced:
                await record(
                    session, change, location_id, "due", now, ticket=ticket, actor="system"
                )
    return min(upcoming, default=None)
