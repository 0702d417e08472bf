"""Queue endpoints (CONTRACT.md): tickets, check-in, the clerk's counter actions, the queue's
views and events. Thin: check who may act, run one transaction, publish its events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.auth.logic import Actor
from aufruf.booking.model import Appointment
from aufruf.deps import ActorDep, ClockDep, DatabaseDep, EventsDep, LinesDep, SettingsDep
from aufruf.errors import Conflict, Forbidden, NotFound
from aufruf.offices.model import Counter, Location
from aufruf.printer import service as printing
from aufruf.queue import service as queue
from aufruf.queue.events import event_message
from aufruf.queue.logic import Desk
from aufruf.queue.model import CounterState, QueueEvent, Ticket
from aufruf.responses import errors
from aufruf.settings import Settings

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
LocationId = Annotated[str, PathParameter(min_length=1, max_length=64)]
CounterId = Annotated[str, PathParameter(min_length=1, max_length=64)]
# one path parameter for both: a ticket's id (staff) or its secret token (the citizen)
TicketRef = Annotated[
    str,
    PathParameter(
        min_length=1, max_length=100, description="Staff: the ticket's id; public: its token"
    ),
]


def ticket_id(ref: str) -> int:
    if not ref.isdigit() or len(ref) > 18:
        raise NotFound(f"There is no ticket {ref!r}.")
    return int(ref)


class AppointmentRef(msgspec.Struct):
    code: str
    start: str


class PrintOut(msgspec.Struct):
    """The paper ticket's print job: `status` queued, started, printed, interrupted, expired,
    failed."""

    printer: str
    status: str
    job: int


class TicketOut(msgspec.Struct, omit_defaults=True):
    id: int
    number: str
    status: str
    location: str
    services: list[str]
    people_ahead: int | None
    estimated_wait_minutes: int | None
    counter: str | None
    status_url: str | msgspec.UnsetType = msgspec.UNSET
    token: str | msgspec.UnsetType = msgspec.UNSET
    appointment: AppointmentRef | msgspec.UnsetType = msgspec.UNSET
    print: PrintOut | msgspec.UnsetType = msgspec.UNSET


class DrawIn(msgspec.Struct):
    services: Annotated[list[Slug], msgspec.Meta(min_length=1, max_length=10)] | None = None
    service: Slug | None = None
    print: Slug | None = None


class CheckInIn(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    print: Slug | None = None


class TransferIn(msgspec.Struct):
    service: Slug


class PriorityIn(msgspec.Struct):
    level: Annotated[int, msgspec.Meta(ge=0, le=9)]


class CounterOut(msgspec.Struct):
    id: str
    name: str
    services: list[str]
    status: str
    clerk: str | None
    current: TicketOut | None


class EventOut(msgspec.Struct):
    type: str
    seq: int
    at: str
    ticket: int | None = None
    number: str | None = None
    services: list[str] = []
    counter: str | None = None
    data: dict[str, Any] = {}


def public_base(settings: Settings, request: Request) -> str:
    return settings.public_url or str(request.base_url).rstrip("/")


async def ticket_out(
    session: AsyncSession | None,
    ticket: Ticket,
    now: datetime,
    *,
    line: queue.Line | queue.Figures | None = None,
    secret_for: tuple[Settings, str] | None = None,
    services: list[str] | None = None,
) -> TicketOut:
    """The ticket in its one public shape; the token and status_url only with `secret_for`.
    `session` may be None for a ticket just drawn, whose `line` figures hold all it needs.
    Its services are read unless given or in `line`."""
    if line is None and ticket.status == "waiting":
        line = await queue.figures(session, ticket.location_id, now)
    services = (
        services
        or (line.services.get(ticket.id) if line else None)
        or (await queue.ticket_services(session, [ticket.id]))[ticket.id]
    )
    counter = await session.get(Counter, ticket.counter_id) if ticket.counter_id else None
    out = TicketOut(
        id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        location=ticket.location_id,
        services=services,
        people_ahead=line.people_ahead.get(ticket.id)
        if line and ticket.status == "waiting"
        else None,
        estimated_wait_minutes=line.wait_minutes.get(ticket.id)
        if line and ticket.status == "waiting"
        else None,
        counter=counter.name if counter and ticket.status in ("called", "serving") else None,
    )
    if ticket.appointment_id is not None:
        appointment = await session.get(Appointment, ticket.appointment_id)
        location = await session.get(Location, ticket.location_id)
        if appointment and location:
            out.appointment = AppointmentRef(
                appointment.code,
                appointment.start_at.astimezone(ZoneInfo(location.timezone)).isoformat(),
            )
    if secret_for is not None:
        settings, base = secret_for
        token = queue.ticket_token(settings.secret_key, ticket)
        out.token = token
        out.status_url = f"{base}/t/{token}"
    return out


async def created_ticket_out(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    settings: Settings,
    request: Request,
    line: queue.Line | queue.Figures | None = None,
) -> TicketOut:
    """The answer that creates a ticket: with its secret link and its print job, if any."""
    out = await ticket_out(
        session, ticket, now, line=line, secret_for=(settings, public_base(settings, request))
    )
    job = await printing.latest_job(session, ticket.id)
    if job is not None:
        out.print = PrintOut(printer=job.printer_id, status=job.status, job=job.id)
    return out


async def _print_for_staff(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    printer: str | None,
    actor: Actor,
    device: bool,
) -> None:
    """Staff choose a printer with `"print": P` (or none); a kiosk prints on its own."""
    if printer is not None and not device:
        await printing.print_on(session, ticket, now, printer, actor=_actor_name(actor))


Work = Callable[[AsyncSession, queue.Change], Awaitable[Any]]


async def run(db, events, work: Work) -> Any:
    """One transaction; its events are published once it has committed."""
    change = queue.Change()
    async with db.write() as session:
        result = await work(session, change)
    await events.publish(change.events)
    return result


def _actor_name(actor: Actor) -> str:
    return f"{actor.kind}:{actor.name}"


class TicketController(Controller):
    path = "/api/v1/locations/{location:str}"
    tags = ["queue"]

    @post(
        "/tickets",
        status_code=HTTP_201_CREATED,
        summary="Draw a ticket",
        responses=errors(400, 401, 403, 404, 409),
    )
    async def draw(
        self,
        request: Request,
        location: LocationId,
        data: JSONBody[DrawIn],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
        lines: LinesDep,
    ) -> TicketOut:
        actor.require("ticket.draw", location=location)
        services = list(data.services or ([data.service] if data.service else []))
        now = clock.now()
        device = actor.kind == "token" and actor.role == "kiosk"

        change = queue.Change()
        if (
            lines is not None
            and lines.db is not None
            and not db.is_sqlite
            and (device or data.print is None)
        ):
            ticket, job = await queue.draw_ticket_at_once(
                db,
                lines,
                change,
                now,
                location,
                services,
                source="kiosk" if device else "staff",
                actor=_actor_name(actor),
                kiosk_id=actor.kiosk,
            )
            await events.publish(change.events)
            line = await queue.drawn_figures(db, lines, ticket, change, now)
            out = await ticket_out(  # all it needs is known: no session
                None, ticket, now, line=line, secret_for=(settings, public_base(settings, request))
            )
            if job is not None:
                out.print = PrintOut(printer=job.printer_id, status="queued", job=job.id)
            return out
        async with db.write() as session:
            ticket = await queue.draw_ticket(
                session,
                change,
                now,
                location,
                services,
                source="kiosk" if device else "staff",
                actor=_actor_name(actor),
                kiosk_id=actor.kiosk,
                lines=lines,
            )
            await _print_for_staff(session, ticket, now, data.print, actor, device)
        await events.publish(change.events)
        # worked out after commit: the number and the sequence are not locked meanwhile
        line = await queue.drawn_figures(db, lines, ticket, change, now)
        async with db.read() as session:
            return await created_ticket_out(session, ticket, now, settings, request, line=line)

    @post(
        "/checkins",
        status_code=HTTP_201_CREATED,
        summary="Check in with a booking code",
        responses=errors(400, 401, 403, 404, 409),
    )
    async def check_in(
        self,
        request: Request,
        location: LocationId,
        data: JSONBody[CheckInIn],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
    ) -> TicketOut:
        actor.require("ticket.draw", location=location)
        now = clock.now()

        async def work(session: AsyncSession, change: queue.Change) -> Ticket:
            ticket = await queue.check_in(
                session,
                change,
                now,
                location,
                data.code,
                actor=_actor_name(actor),
                kiosk_id=actor.kiosk,
            )
            device = actor.kind == "token" and actor.role == "kiosk"
            await _print_for_staff(session, ticket, now, data.print, actor, device)
            return ticket

        ticket = await run(db, events, work)
        async with db.read() as session:
            return await created_ticket_out(session, ticket, now, settings, request)

    @get("/queue", summary="Waiting tickets in call order", responses=errors(401, 403, 404))
    async def waiting(
        self, location: LocationId, actor: ActorDep, db: DatabaseDep, clock: ClockDep
    ) -> list[TicketOut]:
        actor.require("queue.read", location=location)
        now = clock.now()
        async with db.read() as session:
            await _existing_location(session, location)
            line = await queue.waiting_line(session, location, now)
            return [await ticket_out(session, t, now, line=line) for t in line.waiting]

    @get(
        "/counters",
        summary="Counters with their state and current ticket",
        responses=errors(401, 403, 404),
    )
    async def counters(
        self, location: LocationId, actor: ActorDep, db: DatabaseDep, clock: ClockDep
    ) -> list[CounterOut]:
        actor.require("queue.read", location=location)
        now = clock.now()
        async with db.read() as session:
            await _existing_location(session, location)
            line = await queue.waiting_line(session, location, now)
            return await counters_out(session, line.desks, now, line)

    @get(
        "/events",
        summary="The location's events after a seq, in order",
        responses=errors(401, 403, 404),
    )
    async def events_after(
        self,
        location: LocationId,
        actor: ActorDep,
        db: DatabaseDep,
        after: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 500,
    ) -> list[EventOut]:
        actor.require("queue.read", location=location)
        async with db.read() as session:
            await _existing_location(session, location)
            rows = await session.scalars(
                select(QueueEvent)
                .where(QueueEvent.location_id == location, QueueEvent.seq > after)
                .order_by(QueueEvent.seq)
                .limit(limit)
            )
            names = await _counter_names(session, location)
            return [msgspec.convert(event_message(e, names), EventOut) for e in rows]


async def _existing_location(session: AsyncSession, location_id: str) -> Location:
    location = await session.get(Location, location_id)
    if location is None or not location.active:
        raise NotFound(f"There is no location {location_id!r}.")
    return location


async def _counter_names(session: AsyncSession, location_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(Counter.id, Counter.name).where(Counter.location_id == location_id)
    )
    return dict(rows.all())


async def counter_out(session: AsyncSession, desk, now: datetime, line: queue.Line) -> CounterOut:
    return (await counters_out(session, [desk], now, line))[0]


async def counters_out(
    session: AsyncSession, desks: list[Desk], now: datetime, line: queue.Line | queue.Figures
) -> list[CounterOut]:
    """The desks' shapes, with the counters, their states, their current tickets and those
    tickets' services read in three statements for all of them (not four per counter)."""
    return [out for out, _ in await counters_with_tickets(session, desks, now, line)]


async def counters_with_tickets(
    session: AsyncSession, desks: list[Desk], now: datetime, line: queue.Line | queue.Figures
) -> list[tuple[CounterOut, Ticket | None]]:
    """counters_out, each with its current ticket as read (None when it has none)."""
    ids = [desk.id for desk in desks]
    if not ids:
        return []
    rows = await session.execute(
        select(Counter, CounterState)
        .outerjoin(CounterState, CounterState.counter_id == Counter.id)
        .where(Counter.id.in_(ids))
    )
    found = {counter.id: (counter, state) for counter, state in rows}
    current_ids = [
        state.current_ticket_id
        for _, state in found.values()
        if state is not None and state.current_ticket_id is not None
    ]
    tickets: dict[int, Ticket] = {}
    services: dict[int, list[str]] = {}
    if current_ids:
        tickets = {
            t.id: t for t in await session.scalars(select(Ticket).where(Ticket.id.in_(current_ids)))
        }
        services = await queue.ticket_services(session, current_ids)
    shapes = []
    for desk in desks:
        counter, state = found[desk.id]
        current, ticket = None, None
        if state is not None and state.current_ticket_id is not None:
            ticket = tickets[state.current_ticket_id]
            current = await ticket_out(
                session, ticket, now, line=line, services=services[ticket.id]
            )
        out = CounterOut(
            id=desk.id,
            name=counter.name,
            services=sorted(desk.services),
            status=state.status if state else "closed",
            clerk=state.clerk if state else None,
            current=current,
        )
        shapes.append((out, ticket))
    return shapes


_SEATED_ACTIONS = {
    "call-next",
    "recall",
    "start",
    "done",
    "no-show",
    "transfer",
    "pause",
    "resume",
    "open",
    "close",
}


async def _may_act_at_counter(
    session: AsyncSession, actor: Actor, counter_id: str, action: str
) -> Counter:
    counter = await queue.locked_counter(session, counter_id)
    actor.require("counter", location=counter.location_id, counter=counter_id)
    if actor.kind == "user" and actor.role == "clerk" and action in _SEATED_ACTIONS:
        state = await session.get(CounterState, counter_id)
        if state is None or state.clerk != actor.name:
            raise Forbidden(f"Take a seat at {counter.name} first (sit).", reason="not_seated")
    return counter


async def _at_counter(actor: Actor, db, clock, events, counter: str, action: str, step) -> Any:
    """One counter action: who may act is checked inside the action's transaction."""
    now = clock.now()

    async def work(session: AsyncSession, change: queue.Change) -> Any:
        # held here while the step runs: the session keeps its objects only while they are
        # referenced, and the step and its answer read the counter again (without a query)
        seated = await _may_act_at_counter(session, actor, counter, action)
        result = await step(session, change, now)
        del seated
        return result

    return await run(db, events, work)


def _ticket_action(action: str, summary: str, act) -> Any:
    """A counter action on its current ticket, answered with the ticket."""

    @post(
        f"/api/v1/counters/{{counter:str}}/{action}",
        status_code=HTTP_200_OK,
        summary=summary,
        responses=errors(401, 403, 404, 409),
        tags=["counter"],
        name=f"counter-{action}",
        operation_id=f"counter_{action.replace('-', '_')}",
    )
    async def handler(
        counter: CounterId, actor: ActorDep, db: DatabaseDep, clock: ClockDep, events: EventsDep
    ) -> TicketOut:
        async def step(session: AsyncSession, change: queue.Change, now: datetime) -> TicketOut:
            ticket = await act(session, change, counter, now, _actor_name(actor))
            return await ticket_out(session, ticket, now)

        return await _at_counter(actor, db, clock, events, counter, action, step)

    return handler


def _status_action(action: str, summary: str) -> Any:
    """Opening, pausing, resuming or closing a counter, answered with the counter."""

    @post(
        f"/api/v1/counters/{{counter:str}}/{action}",
        status_code=HTTP_200_OK,
        summary=summary,
        responses=errors(401, 403, 404, 409),
        tags=["counter"],
        name=f"counter-{action}",
        operation_id=f"counter_{action}",
    )
    async def handler(
        counter: CounterId, actor: ActorDep, db: DatabaseDep, clock: ClockDep, events: EventsDep
    ) -> CounterOut:
        async def step(session: AsyncSession, change: queue.Change, now: datetime) -> CounterOut:
            await queue.set_counter_status(
                session, change, counter, action, now, _actor_name(actor)
            )
            return await _counter_view(session, counter, now)

        return await _at_counter(actor, db, clock, events, counter, action, step)

    return handler


COUNTER_ACTIONS = [
    _ticket_action("recall", "Call the current ticket again", queue.recall),
    _ticket_action("start", "Start serving the current ticket", queue.start),
    _ticket_action("done", "The current ticket is done", queue.finish),
    _ticket_action(
        "no-show",
        "The current ticket did not come",
        lambda s, c, counter, now, actor: queue.finish(s, c, counter, now, actor, status="no_show"),
    ),
    _status_action("pause", "Pause the counter"),
    _status_action("resume", "Resume after a pause"),
    _status_action("open", "Open the counter"),
    _status_action("close", "Close the counter"),
]


class CounterController(Controller):
    path = "/api/v1/counters/{counter:str}"
    tags = ["counter"]

    @post(
        "/call-next",
        status_code=HTTP_200_OK,
        summary="Call the next ticket (204 if nobody waits)",
        responses={
            **errors(401, 403, 404, 409),
            204: ResponseSpec(None, description="Nobody waits for this counter"),
        },
    )
    async def call_next(
        self,
        counter: CounterId,
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> Response[TicketOut | None]:
        async def step(session, change, now):
            ticket = await queue.call_next(session, change, counter, now, _actor_name(actor))
            if ticket is None:
                return None
            called = change.events[-1]  # names the ticket's services: no need to read them
            return await ticket_out(session, ticket, now, services=list(called.services))

        ticket = await _at_counter(actor, db, clock, events, counter, "call-next", step)
        if ticket is None:
            return Response(None, status_code=HTTP_204_NO_CONTENT)
        return Response(ticket, status_code=HTTP_200_OK)

    @post(
        "/transfer",
        status_code=HTTP_200_OK,
        summary="Send the current ticket to another service",
        responses=errors(400, 401, 403, 404, 409),
    )
    async def transfer(
        self,
        counter: CounterId,
        data: JSONBody[TransferIn],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> TicketOut:
        async def step(session, change, now):
            moved = await queue.transfer(
                session, change, counter, data.service, now, _actor_name(actor)
            )
            return await ticket_out(session, moved, now)

        return await _at_counter(actor, db, clock, events, counter, "transfer", step)

    @post(
        "/sit",
        status_code=HTTP_200_OK,
        summary="Take this counter",
        responses=errors(401, 403, 404, 409),
    )
    async def sit(
        self,
        counter: CounterId,
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> CounterOut:
        async def step(session, change, now):
            await queue.sit(session, change, counter, actor.name, now)
            return await _counter_view(session, counter, now)

        return await _at_counter(actor, db, clock, events, counter, "sit", step)

    @post(
        "/leave",
        status_code=HTTP_200_OK,
        summary="Leave this counter",
        responses=errors(401, 403, 404, 409),
    )
    async def leave(
        self,
        counter: CounterId,
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> CounterOut:
        async def step(session, change, now):
            state = await queue.counter_state(session, counter, now)
            if state.clerk not in (None, actor.name) and actor.role == "clerk":
                raise Conflict(f"{state.clerk} is seated here, not you.", reason="occupied")
            await queue.leave(session, change, counter, state.clerk or actor.name, now)
            return await _counter_view(session, counter, now)

        return await _at_counter(actor, db, clock, events, counter, "leave", step)


async def _counter_view(session: AsyncSession, counter_id: str, now: datetime) -> CounterOut:
    counter = await session.get(Counter, counter_id)
    line = await queue.waiting_line(session, counter.location_id, now)
    desk = next(d for d in line.desks if d.id == counter_id)
    return await counter_out(session, desk, now, line)


class StaffTicketController(Controller):
    path = "/api/v1/tickets/{ref:str}"
    tags = ["queue"]

    async def _manage(self, actor, db, clock, events, ref: str, fn) -> TicketOut:
        now = clock.now()
        wanted = ticket_id(ref)

        async def work(session: AsyncSession, change: queue.Change) -> TicketOut:
            row = await queue.get_ticket(session, wanted)
            actor.require("ticket.manage", location=row.location_id)
            changed = await fn(session, change, row, now)
            return await ticket_out(session, changed, now)

        return await run(db, events, work)

    @post(
        "/priority",
        status_code=HTTP_200_OK,
        summary="Give a waiting ticket priority",
        responses=errors(400, 401, 403, 404, 409),
    )
    async def priority(
        self,
        ref: TicketRef,
        data: JSONBody[PriorityIn],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> TicketOut:
        return await self._manage(
            actor,
            db,
            clock,
            events,
            ref,
            lambda s, c, row, now: queue.set_priority(
                s, c, row.id, data.level, now, _actor_name(actor)
            ),
        )

    @post(
        "/reactivate",
        status_code=HTTP_200_OK,
        summary="Take a no-show back into the line",
        responses=errors(401, 403, 404, 409),
    )
    async def reactivate(
        self, ref: TicketRef, actor: ActorDep, db: DatabaseDep, clock: ClockDep, events: EventsDep
    ) -> TicketOut:
        return await self._manage(
            actor,
            db,
            clock,
            events,
            ref,
            lambda s, c, row, now: queue.reactivate(s, c, row.id, now, _actor_name(actor)),
        )

    @post(
        "/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel a waiting ticket",
        responses=errors(401, 403, 404, 409),
    )
    async def cancel(
        self, ref: TicketRef, actor: ActorDep, db: DatabaseDep, clock: ClockDep, events: EventsDep
    ) -> TicketOut:
        return await self._manage(
            actor,
            db,
            clock,
            events,
            ref,
            lambda s, c, row, now: queue.cancel_ticket(s, c, row, now, _actor_name(actor)),
        )


class PublicTicketController(Controller):
    path = "/api/v1/tickets/{ref:str}"
    tags = ["queue"]

    @get(summary="A ticket by its secret link (the phone view)", responses=errors(404))
    async def read(
        self,
        request: Request,
        ref: TicketRef,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> TicketOut:
        now = clock.now()
        async with db.read() as session:
            ticket = await queue.ticket_by_token(session, settings.secret_key, ref)
            return await ticket_out(
                session, ticket, now, secret_for=(settings, public_base(settings, request))
            )

    @delete(
        status_code=HTTP_204_NO_CONTENT,
        summary="Give up one's place in the line",
        responses=errors(404, 409),
    )
    async def leave(
        self,
        ref: TicketRef,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
    ) -> None:
        now = clock.now()

        async def work(session: AsyncSession, change: queue.Change) -> None:
            ticket = await queue.ticket_by_token(session, settings.secret_key, ref, for_update=True)
            await queue.cancel_ticket(session, change, ticket, now, "citizen")

        await run(db, events, work)
