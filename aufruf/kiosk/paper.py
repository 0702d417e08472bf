"""Whether the visitor gets their ticket on paper: the kiosk says so on the result screen, and
says kindly when no paper comes (a ticket whose print fails stays valid: its number and QR code
are on the screen)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.printer import service as printing
from aufruf.printer import status as printer_status

ON_THE_WAY = ("queued", "started", "printed")


async def paper_ticket_coming(
    session: AsyncSession, ticket_id: int, location_id: str, now: datetime
) -> bool:
    """True when a print job was queued for the ticket, has not expired (not started by its
    deadline: it never prints afterwards), and its printer is not known to be offline or out
    of paper, by what the printer service last recorded of it.

    An agent's printer keeps in touch over its socket, so one not heard of recently (or never)
    counts as offline, as staff see it. The server reaches a direct printer only to print, so
    its last attempt tells: offline after a refused or broken connection, fine until then."""
    job = await printing.latest_job(session, ticket_id)
    if job is None or printing.job_status(job, now) not in ON_THE_WAY:
        return False
    state = next(
        (
            s
            for s in await printer_status.printer_states(session, [location_id], now)
            if s.id == job.printer_id
        ),
        None,
    )
    if state is None or state.paper == "out":
        return False
    if state.connection != "direct":
        return state.online
    recorded = await printer_status.printer_status(session, job.printer_id)
    return recorded is None or (recorded.online and recorded.paper != "out")
