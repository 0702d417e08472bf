"""Printing endpoints: a ticket's reprint, and the printers of a location as staff see them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.auth.logic import Actor
from aufruf.deps import ActorDep, ClockDep, DatabaseDep, EventsDep
from aufruf.errors import NotFound
from aufruf.offices import service as offices
from aufruf.printer import service as printing
from aufruf.printer import status as printer_status
from aufruf.printer.model import PrintJob
from aufruf.printer.sockets import announce_jobs
from aufruf.queue import service as queue
from aufruf.queue.api import TicketRef, ticket_id
from aufruf.responses import errors

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
LocationId = Annotated[str, PathParameter(min_length=1, max_length=64)]


class ReprintIn(msgspec.Struct):
    printer: Slug | None = None


class PrintJobOut(msgspec.Struct):
    job: int
    ticket: int
    number: str
    printer: str
    kind: str  # ticket | reprint
    status: str  # queued | started | printed | interrupted | expired | failed
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None


class PrinterOut(msgspec.Struct):
    id: str
    name: str
    location: str
    connection: str  # agent | direct
    reachable: str  # online | offline | unknown (a direct printer the server has not tried yet)
    online: bool  # false only when known unreachable (aufruf.printer.status)
    paper: str | None  # ok | low | out, null where the printer does not report it
    last_seen: str | None
    problem: str | None
    queued: int
    interrupted: int  # cut off mid-print or expired unprinted, not reprinted yet
    to_reprint: list[PrintJobOut]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def job_out(session: AsyncSession, job: PrintJob, now: datetime) -> PrintJobOut:
    """The job as the API shows it; a queued job past its deadline is `expired`."""
    ticket = await queue.get_ticket(session, job.ticket_id)
    return PrintJobOut(
        job=job.id,
        ticket=job.ticket_id,
        number=ticket.number,
        printer=job.printer_id,
        kind=job.kind,
        status=printing.job_status(job, now),
        attempts=job.attempts,
        created_at=job.created_at.isoformat(),
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        error=job.last_error,
    )


async def reprint_ticket(
    db, events, actor: Actor, ticket: int, now: datetime, printer: str | None
) -> PrintJobOut:
    """One transaction: a new job for the ticket; its agent is told after commit."""
    async with db.write() as session:
        row = await queue.get_ticket(session, ticket)
        actor.require("ticket.manage", location=row.location_id)
        job = await printing.reprint(
            session, row, now, actor=f"{actor.kind}:{actor.name}", printer_id=printer
        )
        out = await job_out(session, job, now)
    announce_jobs(events.channels, out.printer)
    return out


class PrintingController(Controller):
    tags = ["printing"]

    @post(
        "/api/v1/tickets/{ref:str}/reprint",
        status_code=HTTP_201_CREATED,
        summary="Print a ticket again",
        description="A new print job for the ticket on the given printer, or on the printer "
        "its last job was for (a kiosk ticket: the kiosk's printer). 409 `not_active` when the "
        "ticket is no longer waiting, called or being served.",
        responses=errors(400, 401, 403, 404, 409),
    )
    async def reprint(
        self,
        ref: TicketRef,
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
        data: JSONBody[ReprintIn | None] = None,
    ) -> PrintJobOut:
        wanted = ticket_id(ref)
        return await reprint_ticket(
            db, events, actor, wanted, clock.now(), data.printer if data else None
        )

    @get(
        "/api/v1/locations/{location:str}/printers",
        summary="The location's printers: online, paper, last seen, jobs waiting or cut off",
        responses=errors(401, 403, 404),
    )
    async def printers(
        self, location: LocationId, actor: ActorDep, db: DatabaseDep, clock: ClockDep
    ) -> list[PrinterOut]:
        actor.require("queue.read", location=location)
        async with db.read() as session:
            if await offices.get_location(session, location) is None:
                raise NotFound(f"There is no location {location!r}.")
            states = await printer_status.printer_states(session, [location], clock.now())
            now = clock.now()
            to_reprint = await printer_status.jobs_to_reprint(session, [location], now)
            jobs = [await job_out(session, job, now) for job in to_reprint]
        return [
            PrinterOut(
                id=s.id,
                name=s.name,
                location=s.location_id,
                connection=s.connection,
                reachable=s.reachable,
                online=s.online,
                paper=s.paper,
                last_seen=_iso(s.last_seen),
                problem=s.problem,
                queued=s.queued,
                interrupted=s.interrupted,
                to_reprint=[j for j in jobs if j.printer == s.id],
            )
            for s in states
        ]
