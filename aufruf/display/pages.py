"""The clerk's desk: `/desk` (choose a counter of your locations) and `/desk/{C}` (the desk).

Server-rendered in the page's language; the live part is `static/desk.js`, which follows
`/ws/counters/{C}` and acts through the JSON API with the session's CSRF token. Without
JavaScript the pages still show the counters and say that the desk needs it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template

from aufruf.auth.guards import PAGE_EXCEPTION_HANDLERS
from aufruf.auth.logic import Actor
from aufruf.deps import ActorDep, DatabaseDep
from aufruf.display.service import views_of
from aufruf.offices import service as offices
from aufruf.offices.model import Counter
from aufruf.printer.pages import desk_printer_strings
from aufruf.web.i18n import gettext, language_cookies, language_of
from aufruf.web.templating import page_context


def desk_strings(lang: str) -> dict[str, Any]:
    """The texts desk.js shows, in the page's language (`%(name)s` filled in by the script)."""

    return {
        "counter_status": {
            "open": gettext(lang, "Open"),
            "paused": gettext(lang, "Paused"),
            "closed": gettext(lang, "Closed"),
        },
        "ticket_status": {
            "called": gettext(lang, "Called"),
            "serving": gettext(lang, "In service"),
        },
        "appointment_status": {
            "pending": gettext(lang, "Not confirmed"),
            "confirmed": gettext(lang, "Booked"),
            "checked_in": gettext(lang, "Checked in"),
            "completed": gettext(lang, "Completed"),
            "no_show": gettext(lang, "Did not come"),
            "cancelled": gettext(lang, "Cancelled"),
            "expired": gettext(lang, "Expired"),
        },
        "reasons": {
            "closed": gettext(lang, "This counter is not open. Open it first."),
            "counter_closed": gettext(lang, "This counter is closed."),
            "counter_paused": gettext(lang, "This counter is paused."),
            "no_current_ticket": gettext(lang, "There is no current ticket at this counter."),
            "not_called": gettext(lang, "Only a called ticket can be started or called again."),
            "too_soon": gettext(lang, "Please wait a moment before calling again."),
            "has_current": gettext(lang, "Finish the current ticket first."),
            "occupied": gettext(lang, "Someone else is seated at this counter."),
            "seated_elsewhere": gettext(
                lang, "You are still seated at another counter. Leave it first."
            ),
            "not_seated": gettext(lang, "Take a seat at this counter first."),
            "csrf": gettext(lang, "The page has expired. Please reload it."),
            "forbidden": gettext(lang, "You may not do this at this counter."),
        },
        "printers": desk_printer_strings(lang),  # the location's ticket printers
        "nobody": gettext(lang, "Nobody is waiting for this counter."),
        "no_current": gettext(lang, "No current ticket."),
        "queue_empty": gettext(lang, "Nobody is waiting."),
        "no_appointments": gettext(lang, "No appointments today."),
        "waited": gettext(lang, "waiting %(minutes)s min"),
        "arrived": gettext(lang, "arrived %(time)s"),
        "appointment_at": gettext(lang, "appointment %(time)s"),
        "priority": gettext(lang, "priority"),
        "called": gettext(lang, "%(number)s called."),
        "recalled": gettext(lang, "%(number)s called again."),
        "started": gettext(lang, "Serving %(number)s."),
        "done": gettext(lang, "%(number)s done."),
        "no_show": gettext(lang, "%(number)s did not come."),
        "transferred": gettext(lang, "%(number)s sent to %(service)s."),
        "status_changed": gettext(lang, "The counter is now: %(status)s."),
        "seated_you": gettext(lang, "You (%(name)s)"),
        "nobody_seated": gettext(lang, "nobody"),
        "live": gettext(lang, "Live"),
        "connecting": gettext(lang, "Connecting…"),
        "offline": gettext(
            lang, "No connection to the server. Trying again in %(seconds)s seconds…"
        ),
        "refused": gettext(lang, "This desk cannot be shown: %(detail)s"),
        "failed": gettext(lang, "The server could not be reached. Please try again."),
        "expired": gettext(lang, "Your session has expired. Please sign in again."),
    }


def booking_strings(lang: str) -> dict[str, Any]:
    """The texts of the desk's booking dialog (desk.js fills in `%(name)s`)."""

    return {
        "choose_service": gettext(lang, "Choose a service first."),
        "choose_day": gettext(lang, "Choose a day first."),
        "loading": gettext(lang, "Loading free times…"),
        "free": gettext(lang, "free: %(count)s"),
        "none_free": gettext(lang, "none free"),
        "no_days": gettext(lang, "No free times in the next 14 days."),
        "booking": gettext(lang, "Booking…"),
        "booked": gettext(lang, "Appointment booked. Code %(code)s, %(when)s."),
        "when": gettext(lang, "%(date)s at %(time)s"),
        "not_confirmed": gettext(
            lang, "Not confirmed yet: this location asks for a confirmation by e-mail."
        ),
        "mail_sent": gettext(lang, "A confirmation goes to %(email)s."),
        "no_mail": gettext(lang, "No e-mail is sent: please read out the code."),
        "slot_taken": gettext(
            lang,
            "This time has just been taken. The free times are reloaded: please choose another.",
        ),
        "closed": gettext(lang, "This location no longer takes appointments."),
        "invalid": {
            "services": gettext(lang, "Choose at least one service."),
            "quantity": gettext(lang, "Check how many times each service is needed."),
            "day": gettext(lang, "Choose a day with free times."),
            "start": gettext(lang, "Choose one of the free times."),
            "name": gettext(lang, "Enter the citizen's name."),
            "phone": gettext(lang, "This is not a valid phone number."),
            "email": gettext(lang, "This is not a valid e-mail address."),
            "language": gettext(lang, "Choose a language."),
        },
    }


def _may_sit(actor: Actor, location: str, counter: str) -> bool:
    return actor.denial("counter", location=location, counter=counter) is None


def _missing(request: Request, counter: str) -> Template:
    return Template(
        "desk/missing.html", context=page_context(request, counter=counter), status_code=404
    )


class DeskPages(Controller):
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/desk", summary="Choose a counter")
    async def choose(self, request: Request, actor: ActorDep, db: DatabaseDep) -> Template:
        actor.require("counter")
        lang = language_of(request)
        views = views_of(request.app)
        async with db.read() as session:
            located = [
                loc
                for loc in await offices.list_locations(session, lang)
                if actor.at(loc.id) and actor.may("counter")
            ]
            names = {s.id: s.name for s in await offices.list_services(session, lang)}
        locations = []
        for loc in located:
            view = await views.current(loc.id)
            counters = [
                {
                    **counter,
                    "mine": counter["clerk"] == actor.name and actor.kind == "user",
                    "service_names": [names.get(s, s) for s in counter["services"]],
                }
                for counter in view.counters.values()
                if _may_sit(actor, loc.id, counter["id"])
            ]
            if counters:
                locations.append({"id": loc.id, "name": loc.name, "counters": counters})
        seated = next(
            (c for loc in locations for c in loc["counters"] if c["mine"]),
            None,
        )
        return Template(
            "desk/choose.html",
            context=page_context(
                request,
                actor=actor,
                locations=locations,
                seated=seated,
                config={"page": "choose", "strings": desk_strings(lang)},
            ),
            cookies=language_cookies(request),
        )

    @get("/desk/{counter:str}", summary="The desk of a counter")
    async def desk(
        self, request: Request, counter: FromPath[str], actor: ActorDep, db: DatabaseDep
    ) -> Template:
        lang = language_of(request)
        async with db.read() as session:
            row = await session.get(Counter, counter)
            if row is None or not row.active:
                return _missing(request, counter)
            actor.require("counter", location=row.location_id, counter=counter)
            location = next(
                (
                    loc
                    for loc in await offices.list_locations(session, lang)
                    if loc.id == row.location_id
                ),
                None,
            )
            if location is None:
                return _missing(request, counter)
            names = {s.id: s.name for s in await offices.list_services(session, lang)}
        services = {s: names.get(s, s) for s in location.services}
        config = {
            "page": "desk",
            "counter": counter,
            "location": location.id,
            "timezone": location.timezone,
            "lang": lang,
            "me": actor.name,
            "seats": actor.kind == "user",  # a clerk's device token acts without sitting
            "services": services,
            "strings": desk_strings(lang),
            "booking": booking_strings(lang),
        }
        return Template(
            "desk/desk.html",
            context=page_context(
                request,
                actor=actor,
                counter={"id": counter, "name": row.name},
                location=location,
                services=services,
                config=config,
            ),
            cookies=language_cookies(request),
        )
