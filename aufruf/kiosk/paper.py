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
    deadline: it never prints afterwards), and its printer is reachable and not out of paper
    by the printer package's one rule (`aufruf.printer.status`), the one staff see too."""
    job = await printing.latest_job(session, ticket_id)
    if job is None or printing.job_status(job, now) not in ON_THE_WAY:
        return False
    state = await printer_status.printer_state(session, job.printer_id, location_id, now)
    return printer_status.paper_comes_out(state)
