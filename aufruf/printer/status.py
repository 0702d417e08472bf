"""What the server knows of each printer, from the worker (direct printers) or the agent's
socket, and what staff, the desk and the kiosk are told: reachable or not, paper, last
contact, jobs waiting and to print again.

One rule decides whether a printer is reachable (`reachability`), for the staff page, the
printers API and the kiosk alike:
- a printer reached through an agent keeps in touch over its socket: online while it was
  heard of within SEEN_WITHIN and said it is online; never connected or silent: offline;
- a printer the server reaches itself is only contacted to print, so its last recorded attempt
  decides: printed, online; refused or broken off, offline; never tried, unknown, which is
  taken as fine (not known to be unreachable), however long ago the last attempt was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.offices import service as offices
from aufruf.printer.model import PAPER_STATES, PrinterStatus, PrintJob
from aufruf.printer.service import overdue

SEEN_WITHIN = timedelta(seconds=90)  # an agent not heard of for longer counts as offline
REACHABILITY = ("online", "offline", "unknown")
ERROR_MAX = 300


def _clip(text: str | None) -> str | None:
    return text[:ERROR_MAX] if text else None


def _is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def note_printer(
    session: AsyncSession,
    printer_id: str,
    now: datetime,
    *,
    online: bool,
    paper: str | None = None,
    problem: str | None = None,
    connected: bool = False,
    keep_paper: bool = True,
) -> None:
    """Record what was just heard of a printer. `paper` is kept from before unless given
    (or `keep_paper` is False); an unknown paper state is stored as not reported."""
    values: dict = {"online": online, "last_seen": now, "problem": _clip(problem)}
    if connected:
        values["connected_at"] = now
    if paper is not None or not keep_paper:
        values["paper"] = paper if paper in PAPER_STATES else None
    insert = pg_insert if _is_postgres(session) else sqlite_insert
    stmt = insert(PrinterStatus).values(printer_id=printer_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[PrinterStatus.printer_id], set_=values)
    )


async def printer_status(session: AsyncSession, printer_id: str) -> PrinterStatus | None:
    return await session.get(PrinterStatus, printer_id)


def reachability(connection: str, status: PrinterStatus | None, now: datetime) -> str:
    """ "online", "offline" or "unknown" (a direct printer never tried yet), by the module's
    rule."""
    if connection == "direct":
        if status is None or status.last_seen is None:
            return "unknown"
        return "online" if status.online else "offline"
    recent = status is not None and status.last_seen is not None
    recent = recent and now - status.last_seen <= SEEN_WITHIN
    return "online" if recent and status.online else "offline"


def _paper(connection: str, status: PrinterStatus | None, now: datetime) -> str | None:
    """The paper last reported; an agent's report only while it keeps in touch."""
    if status is None or status.last_seen is None:
        return None
    if connection != "direct" and now - status.last_seen > SEEN_WITHIN:
        return None
    return status.paper


@dataclass(frozen=True)
class PrinterState:
    id: str
    name: str
    location_id: str
    connection: str
    reachable: str  # online | offline | unknown (a direct printer never tried yet)
    online: bool  # not known to be unreachable: online, or a direct printer never tried
    paper: str | None
    last_seen: datetime | None
    problem: str | None
    queued: int
    interrupted: int  # cut off or expired, not printed again yet


def _to_reprint(now: datetime):
    """Jobs cut off mid-print or expired unprinted (recorded so or not yet), not reprinted."""
    return and_(
        or_(PrintJob.status.in_(("interrupted", "expired")), overdue(now)),
        PrintJob.reprinted_by.is_(None),
    )


async def printer_states(
    session: AsyncSession, location_ids: list[str] | None, now: datetime
) -> list[PrinterState]:
    """The active printers of these locations (None: all) with what was last heard of them
    and their jobs waiting, or cut off or expired and waiting for a reprint."""
    printers = await offices.printers_at(session, location_ids)
    ids = [p.id for p in printers]
    statuses = {
        s.printer_id: s
        for s in await session.scalars(
            select(PrinterStatus).where(PrinterStatus.printer_id.in_(ids))
        )
    }
    waiting = await session.execute(
        select(PrintJob.printer_id, func.count())
        .where(
            PrintJob.printer_id.in_(ids),
            PrintJob.status == "queued",
            or_(PrintJob.expires_at.is_(None), PrintJob.expires_at > now),
        )
        .group_by(PrintJob.printer_id)
    )
    queued: dict[str, int] = {printer_id: count for printer_id, count in waiting}
    missed = await session.execute(
        select(PrintJob.printer_id, func.count())
        .where(PrintJob.printer_id.in_(ids), _to_reprint(now))
        .group_by(PrintJob.printer_id)
    )
    cut_off: dict[str, int] = {printer_id: count for printer_id, count in missed}
    states = []
    for printer in printers:
        status = statuses.get(printer.id)
        reachable = reachability(printer.connection, status, now)
        states.append(
            PrinterState(
                id=printer.id,
                name=printer.name,
                location_id=printer.location_id,
                connection=printer.connection,
                reachable=reachable,
                online=reachable != "offline",
                paper=_paper(printer.connection, status, now),
                last_seen=status.last_seen if status else None,
                problem=status.problem if status else None,
                queued=queued.get(printer.id, 0),
                interrupted=cut_off.get(printer.id, 0),
            )
        )
    return states


async def printer_state(
    session: AsyncSession, printer_id: str, location_id: str, now: datetime
) -> PrinterState | None:
    """One active printer of a location as `printer_states` tells it; None if there is none."""
    for state in await printer_states(session, [location_id], now):
        if state.id == printer_id:
            return state
    return None


def paper_comes_out(state: PrinterState | None) -> bool:
    """Whether a ticket sent to this printer now is expected on paper: the printer is not
    known to be unreachable and not out of paper."""
    return state is not None and state.online and state.paper != "out"


async def jobs_to_reprint(
    session: AsyncSession, location_ids: list[str] | None, now: datetime, limit: int = 100
) -> list[PrintJob]:
    """Jobs cut off mid-print, or expired because they could not start in time, and not
    reprinted since, newest first. (A failed job is not listed: its ticket is no longer
    active, or its printer is gone.)"""
    stmt = select(PrintJob).where(_to_reprint(now)).order_by(PrintJob.id.desc()).limit(limit)
    if location_ids is not None:
        stmt = stmt.where(PrintJob.location_id.in_(location_ids))
    return list(await session.scalars(stmt))
