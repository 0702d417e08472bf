"""A print job rendered at send time: the ticket as it is now, laid out for the printer the
job is for (paper width, code page, QR mode), with the phone-view link derived from the
ticket's id and nonce (never stored with the job)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking import service as booking
from aufruf.db import pick_text
from aufruf.offices import service as offices
from aufruf.offices.model import Printer
from aufruf.printer.logic import PrinterSetup, TicketPrint, render_ticket
from aufruf.printer.model import PrintJob
from aufruf.printer.service import ACTIVE_TICKETS
from aufruf.queue import service as queue
from aufruf.settings import Settings


class NotPrintable(Exception):
    """The job cannot be printed any more; the message says why (for the job's record)."""


@dataclass(frozen=True)
class RenderConfig:
    public_url: str  # base of the phone-view link in the QR code
    secret: str  # derives the ticket's token

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderConfig:
        return cls(
            (settings.public_url or "http://127.0.0.1:8000").rstrip("/"), settings.secret_key
        )


def printer_setup(printer: Printer) -> PrinterSetup:
    """The layout settings of a configured printer."""
    return PrinterSetup(
        paper_width_mm=printer.paper_width_mm,  # type: ignore[arg-type]
        code_page=printer.code_page,
        qr_mode=printer.qr_mode,  # type: ignore[arg-type]
        image_impl=printer.image_impl,  # type: ignore[arg-type]
    )


async def ticket_print(
    session: AsyncSession, ticket_id: int, config: RenderConfig, now
) -> TicketPrint:
    """What goes on the paper for the ticket now; NotPrintable once it is no longer active."""
    ticket = await queue.get_ticket(session, ticket_id)
    if ticket.status not in ACTIVE_TICKETS:
        raise NotPrintable(f"the ticket is no longer active ({ticket.status})")
    location = await offices.get_location(session, ticket.location_id)
    if location is None:
        raise NotPrintable("the location was removed")
    service_ids = (await queue.ticket_services(session, [ticket.id]))[ticket.id]
    names = {s.id: s.name for s in await offices.list_services(session, "de")}
    people_ahead = None
    if ticket.status == "waiting":
        people_ahead = (await queue.figures(session, ticket.location_id, now)).people_ahead.get(
            ticket.id
        )
    appointment_at = None
    if ticket.appointment_id is not None:
        appointment = await booking.get_appointment(session, ticket.appointment_id)
        appointment_at = appointment.start_at if appointment is not None else None
    token = queue.ticket_token(config.secret, ticket)
    return TicketPrint(
        office_name=pick_text(location.name, "de"),
        number=ticket.number,
        service_names=[names.get(s, s) for s in service_ids],
        issued_at=ticket.issued_at,
        timezone=location.timezone,
        people_ahead=people_ahead,
        url=f"{config.public_url}/t/{token}",
        appointment_at=appointment_at,
    )


async def job_bytes(session: AsyncSession, job_id: int, config: RenderConfig, now) -> bytes:
    """The ESC/POS bytes of a job for its printer; NotPrintable when it cannot be printed.
    The layout runs in a thread: an image QR code takes a few milliseconds of CPU."""
    job = await session.get(PrintJob, job_id)
    if job is None:
        raise NotPrintable("the job is gone")
    printer = await offices.get_printer(session, job.printer_id)
    if printer is None:
        raise NotPrintable("the printer was removed from the directory")
    data = await ticket_print(session, job.ticket_id, config, now)
    return await asyncio.to_thread(render_ticket, data, printer_setup(printer))
