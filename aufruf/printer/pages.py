"""`/admin/printers`: the ticket printers of the staff member's locations, whether they are
online and have paper, their waiting jobs, and the tickets cut off mid-print or not printed
in time (the printer was down until their deadline) with a button
that prints each again (a form with the CSRF token; it works without JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from aufruf.auth.guards import PAGE_EXCEPTION_HANDLERS
from aufruf.deps import ActorDep, ClockDep, DatabaseDep, EventsDep
from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.offices import service as offices
from aufruf.printer import status as printer_status
from aufruf.printer.api import job_out, reprint_ticket
from aufruf.printer.model import PrintJob
from aufruf.web.i18n import gettext, language_cookies, language_of
from aufruf.web.templating import page_context


def status_names(lang: str) -> dict[str, str]:
    return {
        "queued": gettext(lang, "waiting to print"),
        "started": gettext(lang, "printing"),
        "printed": gettext(lang, "printed"),
        "interrupted": gettext(lang, "cut off"),
        "expired": gettext(lang, "not printed in time"),
        "failed": gettext(lang, "not printed"),
    }


def paper_names(lang: str) -> dict[str | None, str]:
    return {
        "ok": gettext(lang, "paper OK"),
        "low": gettext(lang, "paper running low"),
        "out": gettext(lang, "out of paper"),
        None: gettext(lang, "not reported"),
    }


def connection_names(lang: str) -> dict[str, str]:
    return {
        "agent": gettext(lang, "through a printer agent"),
        "direct": gettext(lang, "reached by the server"),
    }


def problems(lang: str) -> dict[str, str]:
    return {
        "not_active": gettext(lang, "This ticket is no longer active; it was not printed again."),
        "missing": gettext(lang, "This print job does not exist."),
        "no_printer": gettext(lang, "This ticket has no printer to print on."),
    }


def desk_printer_strings(lang: str) -> dict[str, str]:
    """The texts of the desk's printer line (desk.js fills in `%(name)s` and `%(count)s`)."""
    return {
        "offline": gettext(lang, "Ticket printer %(name)s is not reachable."),
        "paper_out": gettext(lang, "Ticket printer %(name)s is out of paper."),
        "paper_low": gettext(lang, "Ticket printer %(name)s is running low on paper."),
        "cut_off": gettext(lang, "%(name)s: %(count)s tickets to print again."),
        "link": gettext(lang, "Ticket printers"),
    }


@dataclass(frozen=True)
class JobRow:
    job: int
    number: str
    printer: str
    status: str
    when: str
    when_iso: str
    error: str


def _when(moment: datetime | None, zone: str, lang: str) -> str:
    if moment is None:
        return ""
    return format_datetime(moment.astimezone(ZoneInfo(zone)), format="short", locale=lang)


def _zone(locations: dict, location_id: str) -> str:
    found = locations.get(location_id)
    return found.timezone if found is not None else "Europe/Berlin"


class PrinterPages(Controller):
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/admin/printers", summary="Ticket printers")
    async def printers(
        self, request: Request, actor: ActorDep, db: DatabaseDep, clock: ClockDep
    ) -> Template:
        actor.require("queue.read")
        lang = language_of(request)
        scope = sorted(actor.locations) if actor.locations is not None else None
        now = clock.now()
        async with db.read() as session:
            states = await printer_status.printer_states(session, scope, now)
            locations = {loc.id: loc for loc in await offices.list_locations(session, lang)}
            statuses = status_names(lang)
            cut_off = []
            for job in await printer_status.jobs_to_reprint(session, scope, now):
                out = await job_out(session, job, now)
                zone = _zone(locations, job.location_id)
                cut_off.append(
                    JobRow(
                        job=out.job,
                        number=out.number,
                        printer=out.printer,
                        status=statuses.get(out.status, out.status),
                        when=_when(job.started_at or job.created_at, zone, lang),
                        when_iso=(job.started_at or job.created_at).isoformat(),
                        error=out.error or "",
                    )
                )
        zones = {s.id: _zone(locations, s.location_id) for s in states}
        names = {s.id: s.name for s in states}
        reprinted = request.query_params.get("reprinted") or ""
        problem = problems(lang).get(request.query_params.get("problem") or "", "")
        return Template(
            "admin/printers.html",
            context=page_context(
                request,
                actor=actor,
                printers=states,
                cut_off=cut_off,
                location_names={k: v.name for k, v in locations.items()},
                printer_names=names,
                last_seen={s.id: _when(s.last_seen, zones[s.id], lang) for s in states},
                papers=paper_names(lang),
                connections=connection_names(lang),
                reprinted=reprinted,
                problem=problem,
                may_reprint=actor.may("ticket.manage"),
            ),
            cookies=language_cookies(request),
            headers={"Cache-Control": "no-store"},
        )

    @post("/admin/printers/jobs/{job_id:int}/reprint", summary="Print a cut-off ticket again")
    async def reprint(
        self,
        job_id: FromPath[int],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        events: EventsDep,
    ) -> Redirect:
        async with db.read() as session:
            job = await session.get(PrintJob, job_id)
        if job is None:
            return Redirect("/admin/printers?problem=missing", status_code=303)
        actor.require("ticket.manage", location=job.location_id)
        try:
            new = await reprint_ticket(
                db, events, actor, job.ticket_id, clock.now(), job.printer_id
            )
        except (Conflict, NotFound) as refused:
            reason = "not_active" if refused.reason == "not_active" else "missing"
            return Redirect(f"/admin/printers?problem={reason}", status_code=303)
        except InvalidInput:
            return Redirect("/admin/printers?problem=no_printer", status_code=303)
        return Redirect(f"/admin/printers?reprinted={new.number}", status_code=303)
