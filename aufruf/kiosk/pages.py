"""The kiosk: `/kiosk/{L}`, the touch screen at a location's entrance. Visitors draw a ticket
for a service or check in with their booking code, and see their number, the people ahead,
the estimated wait and the QR code of their phone view.

A kiosk is a browser with a kiosk token (`aufruf token create --role kiosk --location L`). It
opens `/kiosk/{L}?token=T` once: the token goes into an httponly, SameSite=Strict cookie for
the kiosk's own path, and the browser is sent on to the clean address, so the token stays out
of the address bar and the history (and the access log never writes query strings). Every
later request is checked against the token again, so revoking it stops the kiosk at once.

The forms work without JavaScript: plain POSTs to this page's own handlers, which run the
queue service's `draw_ticket` and `check_in` for the kiosk, as the kiosk API does. Besides
SameSite=Strict, every form carries a CSRF token derived from the kiosk's cookie, so no other
site can make the kiosk draw tickets. `static/kiosk.js` returns to the start screen after a
while without a touch and keeps a tapped form from being sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_time
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.auth import service as auth
from aufruf.auth.guards import CSRF_FIELD, came_over_https
from aufruf.auth.logic import Actor, csrf_matches, csrf_token
from aufruf.booking.logic import CODE_ALPHABET, normalise_code
from aufruf.clock import Clock
from aufruf.db import Database, pick_text
from aufruf.deps import ClockDep, DatabaseDep, EventsDep, SettingsDep
from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.kiosk.paper import paper_ticket_coming
from aufruf.kiosk.qr import qr_svg
from aufruf.kiosk.texts import check_in_problem, opens_sentence, wait_sentences
from aufruf.offices import service as offices
from aufruf.queue import service as queue
from aufruf.queue.api import public_base, run, ticket_out
from aufruf.queue.model import Ticket
from aufruf.settings import Settings
from aufruf.web.i18n import PUBLIC_LANGUAGES, gettext, language_of
from aufruf.web.templating import public_page_context

KIOSK_COOKIE = "aufruf_kiosk"
COOKIE_SECONDS = 400 * 24 * 3600  # the longest a browser keeps a cookie
IDLE_SECONDS = 30
# the on-screen keys for the booking code: its characters, digits first
CODE_KEYS = sorted(CODE_ALPHABET, key=lambda c: (not c.isdigit(), c))
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class KioskRefused(Exception):
    """This browser is no kiosk of the location (401), or one of another location (403)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.status_code = status_code


@dataclass(frozen=True)
class Screen:
    """What the start screen (and the walk-in offer after a late check-in) shows."""

    name: str
    tiles: list[tuple[str, str]]  # service id, name in the visitor's language
    closed: bool
    opens: str  # when walk-in tickets are given out again, as a sentence ("" if unknown)


def kiosk_cookie(location: str, token: str, https: bool) -> Cookie:
    return Cookie(
        key=KIOSK_COOKIE,
        value=token,
        max_age=COOKIE_SECONDS,
        path=f"/kiosk/{location}",
        httponly=True,
        samesite="strict",
        secure=https,
    )


async def kiosk_actor(db: Database, clock: Clock, token: str | None, location: str) -> Actor:
    """The kiosk behind `token`, if it is a kiosk token of `location`; else KioskRefused."""
    actor = await auth.token_actor(db, clock.now(), token) if token else None
    if actor is None:
        raise KioskRefused(401)
    if actor.role != "kiosk" or actor.denial("ticket.draw", location=location):
        raise KioskRefused(403)
    return actor


async def start_screen(session: AsyncSession, location_id: str, lang: str, now: datetime) -> Screen:
    """The location's name, its services as tiles, and whether walk-ins are closed now (the
    queue service decides) with when they open again."""
    location = await offices.get_location(session, location_id)
    info = next(
        (i for i in await offices.list_locations(session, lang) if i.id == location_id), None
    )
    if location is None or info is None:
        raise NotFound(f"There is no location {location_id!r}.")
    names = {s.id: s.name for s in await offices.list_services(session, lang)}
    closed = await queue.walk_in_closed_reason(session, location, now) is not None
    opens = ""
    if closed:
        opens = opens_sentence(lang, await offices.next_opening(session, location, now), now)
    return Screen(info.name, [(s, names.get(s, s)) for s in info.services], closed, opens)


def form_token_ok(settings: Settings, token: str | None, given: object) -> bool:
    """Whether a form came from this kiosk's own screen (its CSRF field matches)."""
    return isinstance(given, str) and csrf_matches(
        settings.secret_key, "kiosk:" + (token or ""), given
    )


def device_context(request: Request, location_id: str, **values: Any) -> dict[str, Any]:
    """The public page context, its language switch leading to the start screen (never
    repeating this request's query, which may hold a token)."""
    context = public_page_context(request, **values)
    for language in context["languages"]:
        language["url"] = f"/kiosk/{location_id}?{urlencode({'lang': language['code']})}"
    return context


def kiosk_context(
    request: Request, location: str, settings: Settings, token: str | None, **values: Any
) -> dict[str, Any]:
    """What every kiosk screen needs: the language (switched by big buttons that lead to the
    start screen), the addresses of its forms with the language kept, the form token."""
    context = device_context(request, location, **values)
    lang = context["lang"]
    start_url = f"/kiosk/{location}"
    here = f"?{urlencode({'lang': lang})}" if "lang" in request.query_params else ""
    return {
        **context,
        "start_url": start_url,
        "tickets_url": f"{start_url}/tickets{here}",
        "checkin_url": f"{start_url}/checkin{here}",
        "again_url": f"{start_url}{here}",
        "kiosk_csrf": csrf_token(settings.secret_key, "kiosk:" + (token or "")),
        "idle_seconds": IDLE_SECONDS,
    }


def page(
    request: Request,
    template: str,
    location: str,
    settings: Settings,
    token: str | None,
    status_code: int = 200,
    **values: Any,
) -> Template:
    return Template(
        template,
        context=kiosk_context(request, location, settings, token, **values),
        status_code=status_code,
        headers=NO_STORE,
    )


def problem(
    request: Request,
    location: str,
    settings: Settings,
    token: str | None,
    status_code: int,
    heading: str,
    sentence: str,
    offer: Screen | None = None,
) -> Template:
    return page(
        request,
        "kiosk/problem.html",
        location,
        settings,
        token,
        status_code,
        heading=heading,
        sentence=sentence,
        offer=offer,
    )


def expired(request: Request, location: str, settings: Settings, token: str | None) -> Template:
    lang = language_of(request, PUBLIC_LANGUAGES)
    return problem(
        request,
        location,
        settings,
        token,
        403,
        gettext(lang, "Please start again"),
        gettext(lang, "The page had expired. Please make your choice again."),
    )


def out_of_service(request: Request, location: str) -> Template:
    context = device_context(request, location, location=location, status="missing")
    return Template("kiosk/device.html", context=context, status_code=404, headers=NO_STORE)


def refused_page(request: Request, exc: KioskRefused) -> Template:
    location = str(request.path_params.get("location", ""))
    status = "not_registered" if exc.status_code == 401 else "elsewhere"
    context = device_context(request, location, location=location, status=status)
    return Template(
        "kiosk/device.html", context=context, status_code=exc.status_code, headers=NO_STORE
    )


async def failed_check_in(
    request: Request,
    location: str,
    db: Database,
    settings: Settings,
    token: str | None,
    exc: NotFound | Conflict,
    now: datetime,
) -> Template:
    lang = language_of(request, PUBLIC_LANGUAGES)
    offer = None
    async with db.read() as session:
        rules = await queue.rules_at(session, location)
        heading, sentence = check_in_problem(lang, exc, rules.checkin_early_minutes)
        if exc.reason in ("too_late", "cancelled"):
            screen = await start_screen(session, location, lang, now)
            offer = None if screen.closed else screen
        if exc.reason == "wrong_location":
            elsewhere = next((e["message"] for e in exc.extra or [] if e["key"] == "location"), "")
            place = next(
                (i for i in await offices.list_locations(session, lang) if i.id == elsewhere),
                None,
            )
            if place is not None:
                sentence = gettext(lang, "Your appointment is at: %(place)s.") % {
                    "place": f"{place.name}, {place.address}"
                }
    return problem(request, location, settings, token, exc.status_code, heading, sentence, offer)


async def result(
    request: Request,
    location: str,
    db: Database,
    settings: Settings,
    token: str | None,
    ticket: Ticket,
    now: datetime,
) -> Template:
    """The screen with the new ticket: its number, service, people ahead, wait, QR code, and
    whether it comes on paper."""
    lang = language_of(request, PUBLIC_LANGUAGES)
    async with db.read() as session:
        out = await ticket_out(
            session, ticket, now, secret_for=(settings, public_base(settings, request))
        )
        names = {s.id: s.name for s in await offices.list_services(session, lang)}
        place = await offices.get_location(session, location)
        on_paper = await paper_ticket_coming(session, ticket.id, location, now)
    appointment_time = None
    if out.appointment and place is not None:
        start = datetime.fromisoformat(out.appointment.start).astimezone(ZoneInfo(place.timezone))
        appointment_time = format_time(start, format="short", locale=lang)
    return page(
        request,
        "kiosk/ticket.html",
        location,
        settings,
        token,
        201,
        ticket=out,
        services=[names.get(s, s) for s in out.services],
        waiting=wait_sentences(lang, out.people_ahead, out.estimated_wait_minutes),
        appointment_time=appointment_time,
        on_paper=on_paper,
        place_name=pick_text(place.name, lang) if place is not None else "",
        qr=qr_svg(str(out.status_url), gettext(lang, "QR code of your ticket's live view")),
        languages=[],
    )


class KioskPages(Controller):
    path = "/kiosk/{location:str}"
    include_in_schema = False
    exception_handlers = {KioskRefused: refused_page}

    @get("/", summary="The kiosk's start screen")
    async def start(
        self,
        request: Request,
        location: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            await kiosk_actor(db, clock, given, location)
            lang = request.query_params.get("lang")
            clean = f"/kiosk/{location}" + (f"?{urlencode({'lang': lang})}" if lang else "")
            return Redirect(
                clean,
                status_code=303,
                cookies=[kiosk_cookie(location, given, came_over_https(request, settings))],
                headers=NO_STORE,
            )
        token = request.cookies.get(KIOSK_COOKIE)
        await kiosk_actor(db, clock, token, location)
        lang = language_of(request, PUBLIC_LANGUAGES)
        try:
            async with db.read() as session:
                screen = await start_screen(session, location, lang, clock.now())
        except NotFound:
            return out_of_service(request, location)
        return page(
            request,
            "kiosk/start.html",
            location,
            settings,
            token,
            screen=screen,
            home="lang" not in request.query_params,
            code_keys=CODE_KEYS,
        )

    @post("/tickets", summary="Draw a ticket at the kiosk")
    async def draw(
        self,
        request: Request,
        location: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
    ) -> Response:
        token = request.cookies.get(KIOSK_COOKIE)
        actor = await kiosk_actor(db, clock, token, location)
        form = await request.form()
        lang = language_of(request, PUBLIC_LANGUAGES)
        if not form_token_ok(settings, token, form.get(CSRF_FIELD)):
            return expired(request, location, settings, token)
        now = clock.now()

        async def work(session: AsyncSession, change: queue.Change) -> Any:
            return await queue.draw_ticket(
                session,
                change,
                now,
                location,
                [str(form.get("service") or "")[:64]],
                source="kiosk",
                actor=f"{actor.kind}:{actor.name}",
                kiosk_id=actor.kiosk,
            )

        try:
            ticket = await run(db, events, work)
        except NotFound:
            return out_of_service(request, location)
        except InvalidInput:
            return problem(
                request,
                location,
                settings,
                token,
                400,
                gettext(lang, "Please choose a service"),
                gettext(lang, "This service is not offered here. Please choose again."),
            )
        except Conflict:
            async with db.read() as session:
                screen = await start_screen(session, location, lang, now)
            return problem(
                request,
                location,
                settings,
                token,
                409,
                gettext(lang, "No more tickets at the moment"),
                screen.opens or gettext(lang, "No tickets are given out at the moment."),
            )
        return await result(request, location, db, settings, token, ticket, now)

    @post("/checkin", summary="Check in with a booking code at the kiosk")
    async def check_in(
        self,
        request: Request,
        location: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
    ) -> Response:
        token = request.cookies.get(KIOSK_COOKIE)
        actor = await kiosk_actor(db, clock, token, location)
        form = await request.form()
        lang = language_of(request, PUBLIC_LANGUAGES)
        if not form_token_ok(settings, token, form.get(CSRF_FIELD)):
            return expired(request, location, settings, token)
        code = normalise_code(str(form.get("code") or "")[:40])
        if not code:
            return problem(
                request,
                location,
                settings,
                token,
                400,
                gettext(lang, "Please enter your booking code"),
                gettext(lang, "You find the code in your booking confirmation."),
            )
        now = clock.now()

        async def work(session: AsyncSession, change: queue.Change) -> Any:
            return await queue.check_in(
                session,
                change,
                now,
                location,
                code,
                actor=f"{actor.kind}:{actor.name}",
                kiosk_id=actor.kiosk,
            )

        try:
            ticket = await run(db, events, work)
        except (NotFound, Conflict) as exc:
            return await failed_check_in(request, location, db, settings, token, exc, now)
        return await result(request, location, db, settings, token, ticket, now)
