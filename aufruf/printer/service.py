"""Print jobs as rows: queued in the ticket's transaction, taken with a lease, moved through
their states by the worker (direct printers) or the agent's socket (aufruf.printer.sockets).

At most once: a job becomes `started` (committed) once the connection to the printer is open
and before the bytes go out; only a `queued` job is ever handed out, so a started job is never
sent again by itself. A printer that refuses the connection leaves the job queued, to be tried
again after a growing pause, but only until its deadline (`expires_at`, the printer's
`print_deadline_seconds` after it was queued): a job not started by then expires and is never
printed afterwards, by the worker or an agent, for the visitor was told no paper would come
and a late ticket would lie in the tray for a stranger. Staff print it again with one click.
Several workers never take the same job (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one
writer at a time), and every step checks the state it expects.

This module reads no ticket table: the queue hands in its `Ticket` rows; the rendering of a
job from its ticket is `aufruf.printer.render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.offices import service as offices
from aufruf.offices.model import Printer
from aufruf.printer.model import PrintJob

if TYPE_CHECKING:
    from aufruf.queue.model import Ticket

LEASE = timedelta(seconds=60)  # a job taken to be sent; long enough to open and start
ACK_TIMEOUT = timedelta(minutes=2)  # started and never acknowledged: interrupted
RETRY_SECONDS = (5, 10, 20, 40, 60)
ACTIVE_TICKETS = ("waiting", "called", "serving")  # the queue's open states
ERROR_MAX = 300


class TicketNotActive(Conflict):
    reason = "not_active"


@dataclass(frozen=True)
class Claimed:
    """A job taken to be sent, until `lease_until`."""

    id: int
    printer_id: str
    ticket_id: int
    kind: str
    lease_until: datetime


def retry_delay(attempts: int) -> timedelta:
    """The pause before trying a refused job again, growing with its attempts."""
    return timedelta(seconds=RETRY_SECONDS[min(max(attempts, 1), len(RETRY_SECONDS)) - 1])


def _clip(text: str | None) -> str | None:
    return text[:ERROR_MAX] if text else None


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


# --- queueing --------------------------------------------------------------------------------


def _add_job(
    session: AsyncSession, printer: Printer, ticket: Ticket, now: datetime, kind: str, actor: str
) -> PrintJob:
    job = PrintJob(
        printer_id=printer.id,
        expires_at=now + timedelta(seconds=printer.print_deadline_seconds),
        location_id=ticket.location_id,
        ticket_id=ticket.id,
        kind=kind,
        status="queued",
        attempts=0,
        created_at=now,
        due_at=now,
        actor=actor[:120] if actor else None,
    )
    session.add(job)
    return job


async def print_new_ticket(session: AsyncSession, ticket: Ticket, now: datetime) -> PrintJob | None:
    """Queue the paper ticket of a ticket drawn at a kiosk on the kiosk's own printer, in the
    ticket's transaction. None for tickets drawn elsewhere, or at a kiosk without a printer."""
    printer = await kiosk_ticket_printer(session, ticket.kiosk_id, ticket.location_id)
    return queue_kiosk_print(session, printer, ticket, now)


def queue_kiosk_print(
    session: AsyncSession, printer: Printer | None, ticket: Ticket, now: datetime
) -> PrintJob | None:
    """print_new_ticket with the printer looked up beforehand (`kiosk_ticket_printer`), so a
    draw reads nothing once its number and seq are locked."""
    if printer is None:
        return None
    return _add_job(session, printer, ticket, now, "ticket", f"kiosk:{ticket.kiosk_id}")


async def kiosk_ticket_printer(
    session: AsyncSession, kiosk_id: str | None, location_id: str
) -> Printer | None:
    """The printer a kiosk's tickets at `location_id` come out of, or None."""
    if kiosk_id is None:
        return None
    printer = await offices.kiosk_printer(session, kiosk_id)
    if printer is None or printer.location_id != location_id:
        return None
    return printer


async def _printer_at(
    session: AsyncSession, printer_id: str, location_id: str, field: str
) -> Printer:
    printer = await offices.get_printer(session, printer_id)
    if printer is None or printer.location_id != location_id:
        raise InvalidInput(f"There is no printer {printer_id!r} at this location.", field=field)
    return printer


async def print_on(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    printer_id: str,
    *,
    actor: str,
    field: str = "print",
) -> PrintJob:
    """Queue the paper ticket on a printer that staff chose (`"print": P`), in the ticket's
    transaction; 400 naming `field` for a printer that is not at the ticket's location."""
    printer = await _printer_at(session, printer_id, ticket.location_id, field)
    job = _add_job(session, printer, ticket, now, "ticket", actor)
    await session.flush()
    return job


async def reprint(
    session: AsyncSession,
    ticket: Ticket,
    now: datetime,
    *,
    actor: str,
    printer_id: str | None = None,
) -> PrintJob:
    """A new job for the ticket on `printer_id`, or else on the printer its last job was
    for, or else its kiosk's printer. Earlier jobs of the ticket that were cut off or failed
    count as reprinted by it. 409 `not_active` once the ticket is no longer active. The new
    job has the printer's deadline from now, as a new ticket's has."""
    if ticket.status not in ACTIVE_TICKETS:
        raise TicketNotActive(
            f"Ticket {ticket.number} is {ticket.status}; only active tickets are reprinted."
        )
    if printer_id is not None:
        printer = await _printer_at(session, printer_id, ticket.location_id, "printer")
    else:
        last = await latest_job(session, ticket.id)
        printer = None
        if last is not None:
            printer = await offices.get_printer(session, last.printer_id)
        if printer is None and ticket.kiosk_id is not None:
            printer = await offices.kiosk_printer(session, ticket.kiosk_id)
        if printer is None or printer.location_id != ticket.location_id:
            raise InvalidInput("This ticket has no printer yet; say which one.", field="printer")
    await expire_overdue(session, now, ticket_id=ticket.id)
    job = _add_job(session, printer, ticket, now, "reprint", actor)
    await session.flush()
    await _link_reprint(session, ticket.id, job.id)
    return job


async def _link_reprint(session: AsyncSession, ticket_id: int, job_id: int) -> None:
    """Jobs of the ticket that were cut off or failed are reprinted by `job_id`."""
    await session.execute(
        update(PrintJob)
        .where(
            PrintJob.ticket_id == ticket_id,
            PrintJob.id != job_id,
            PrintJob.status.in_(("interrupted", "expired", "failed")),
            PrintJob.reprinted_by.is_(None),
        )
        .values(reprinted_by=job_id)
        .execution_options(synchronize_session=False)
    )


async def job_of(session: AsyncSession, job_id: int) -> PrintJob:
    job = await session.get(PrintJob, job_id)
    if job is None:
        raise NotFound(f"There is no print job {job_id}.")
    return job


async def latest_job(session: AsyncSession, ticket_id: int) -> PrintJob | None:
    """The ticket's newest print job, or None."""
    return await session.scalar(
        select(PrintJob)
        .where(PrintJob.ticket_id == ticket_id)
        .order_by(PrintJob.id.desc())
        .limit(1)
    )


# --- taking and moving jobs ------------------------------------------------------------------


def overdue(now: datetime):
    """Queued jobs whose deadline has passed: expired, whether or not recorded so yet."""
    return and_(PrintJob.status == "queued", PrintJob.expires_at <= now)


def job_status(job: PrintJob, now: datetime) -> str:
    """The job's status at `now`: a queued job past its deadline is expired."""
    if job.status == "queued" and job.expires_at is not None and job.expires_at <= now:
        return "expired"
    return job.status


def _in_time(now: datetime):
    return or_(PrintJob.expires_at.is_(None), PrintJob.expires_at > now)


def _due(now: datetime):
    return and_(
        PrintJob.status == "queued",
        PrintJob.due_at <= now,
        _in_time(now),
        or_(PrintJob.lease_until.is_(None), PrintJob.lease_until <= now),
    )


async def expire_overdue(
    session: AsyncSession,
    now: datetime,
    *,
    printer_id: str | None = None,
    job_id: int | None = None,
    ticket_id: int | None = None,
) -> int:
    """Queued jobs past their deadline become expired (of one printer, job or ticket, or all);
    they are never sent afterwards. Returns how many."""
    where = overdue(now)
    if printer_id is not None:
        where = and_(where, PrintJob.printer_id == printer_id)
    if job_id is not None:
        where = and_(where, PrintJob.id == job_id)
    if ticket_id is not None:
        where = and_(where, PrintJob.ticket_id == ticket_id)
    result = await session.execute(
        update(PrintJob)
        .where(where)
        .values(
            status="expired",
            finished_at=now,
            lease_until=None,
            last_error="not started in time (the printer was not reachable); not printed late",
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def _take(session: AsyncSession, stmt, now: datetime) -> list[Claimed]:
    if _is_postgres(session):
        stmt = stmt.with_for_update(of=PrintJob, skip_locked=True)
    lease_until = now + LEASE
    jobs = list(await session.scalars(stmt))
    for job in jobs:
        job.lease_until = lease_until
        job.attempts += 1
    return [Claimed(j.id, j.printer_id, j.ticket_id, j.kind, lease_until) for j in jobs]


async def claim_direct(session: AsyncSession, now: datetime, limit: int = 10) -> list[Claimed]:
    """Take up to `limit` due jobs of printers the server reaches itself (the worker), after
    expiring the ones past their deadline."""
    await expire_overdue(session, now)
    stmt = (
        select(PrintJob)
        .join(Printer, Printer.id == PrintJob.printer_id)
        .where(_due(now), Printer.connection == "direct", Printer.active)
        .order_by(PrintJob.due_at, PrintJob.id)
        .limit(limit)
    )
    return await _take(session, stmt, now)


async def claim_for_printer(
    session: AsyncSession, printer_id: str, now: datetime, limit: int = 20
) -> list[Claimed]:
    """Take up to `limit` due jobs of one printer (its agent's socket), after expiring its
    jobs past their deadline."""
    await expire_overdue(session, now, printer_id=printer_id)
    stmt = (
        select(PrintJob)
        .where(_due(now), PrintJob.printer_id == printer_id)
        .order_by(PrintJob.due_at, PrintJob.id)
        .limit(limit)
    )
    return await _take(session, stmt, now)


async def has_due_job(session: AsyncSession, printer_id: str, now: datetime) -> bool:
    """Whether the printer has a job to take now (a read, before taking it in a write)."""
    found = await session.scalar(
        select(PrintJob.id).where(_due(now), PrintJob.printer_id == printer_id).limit(1)
    )
    return found is not None


async def next_direct_due(session: AsyncSession) -> datetime | None:
    """When the earliest queued job of a direct printer is due (None: there is none). A job
    past its deadline counts as due, so that the worker comes to expire it."""
    return await session.scalar(
        select(func.min(PrintJob.due_at))
        .join(Printer, Printer.id == PrintJob.printer_id)
        .where(PrintJob.status == "queued", Printer.connection == "direct", Printer.active)
    )


def _job(job_id: int, printer_id: str, *statuses: str):
    return and_(
        PrintJob.id == job_id, PrintJob.printer_id == printer_id, PrintJob.status.in_(statuses)
    )


async def _move(session: AsyncSession, where, **values) -> bool:
    result = await session.execute(
        update(PrintJob).where(where).values(**values).execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1


async def mark_started(
    session: AsyncSession,
    job_id: int,
    printer_id: str,
    now: datetime,
    lease_until: datetime | None = None,
) -> bool:
    """The connection to the printer is open and the bytes are about to go out. False when
    the job is not (or no longer) queued, is past its deadline (it is expired now), or another
    holds its lease: then nothing may be sent."""
    await expire_overdue(session, now, job_id=job_id)
    where = and_(_job(job_id, printer_id, "queued"), _in_time(now))
    if lease_until is not None:
        where = and_(where, PrintJob.lease_until == lease_until)
    return await _move(session, where, status="started", started_at=now, lease_until=None)


async def mark_printed(session: AsyncSession, job_id: int, printer_id: str, now: datetime) -> bool:
    """The printer took all bytes. A late acknowledgement of an interrupted or expired job
    counts too (the ticket did come out), as does one whose "started" was lost on the way."""
    return await _move(
        session,
        _job(job_id, printer_id, "queued", "started", "interrupted", "expired"),
        status="printed",
        finished_at=now,
        lease_until=None,
        last_error=None,
    )


async def retry_later(
    session: AsyncSession,
    job_id: int,
    printer_id: str,
    now: datetime,
    reason: str,
    lease_until: datetime | None = None,
) -> bool:
    """Nothing was printed (the printer refused or was not there): queue the job again after
    a pause that grows with its attempts."""
    job = await session.get(PrintJob, job_id, with_for_update=_is_postgres(session))
    if job is None or job.printer_id != printer_id or job.status != "queued":
        return False
    if lease_until is not None and job.lease_until != lease_until:
        return False
    job.lease_until = None
    job.due_at = now + retry_delay(job.attempts)
    job.last_error = _clip(reason)
    return True


async def mark_interrupted(
    session: AsyncSession, job_id: int, printer_id: str, now: datetime, reason: str
) -> bool:
    """A started job was cut off: shown to staff for reprint, never sent again by itself."""
    return await _move(
        session,
        _job(job_id, printer_id, "started"),
        status="interrupted",
        finished_at=now,
        last_error=_clip(reason),
    )


async def mark_failed(session: AsyncSession, job_id: int, now: datetime, reason: str) -> bool:
    """A job that will not be printed (its ticket is no longer active, its printer gone)."""
    return await _move(
        session,
        and_(PrintJob.id == job_id, PrintJob.status == "queued"),
        status="failed",
        finished_at=now,
        lease_until=None,
        last_error=_clip(reason),
    )


async def release(session: AsyncSession, printer_id: str, job_ids: list[int]) -> None:
    """Give back jobs sent to a socket that went away before they started, so the printer's
    next connection gets them at once."""
    if job_ids:
        await session.execute(
            update(PrintJob)
            .where(
                PrintJob.printer_id == printer_id,
                PrintJob.id.in_(job_ids),
                PrintJob.status == "queued",
            )
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


async def interrupt_unacknowledged(session: AsyncSession, now: datetime) -> int:
    """Jobs started longer than ACK_TIMEOUT ago and never acknowledged: interrupted."""
    result = await session.execute(
        update(PrintJob)
        .where(PrintJob.status == "started", PrintJob.started_at <= now - ACK_TIMEOUT)
        .values(
            status="interrupted",
            finished_at=now,
            last_error="the printer never confirmed this ticket",
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
