"""The phone view: `/t/{token}`, the page behind the QR code on a ticket.

The ticket's number, the people ahead and the estimated wait, in the visitor's language (one of
the six public ones); live through `static/ticket.js` over `/ws/tickets/{token}`, and without
JavaScript it reloads itself every REFRESH_SECONDS. No personal data: the number, the state, the
counter once called. An unknown token gets a friendly 404 page.

Leaving the queue is a confirm page (`GET /t/{token}/leave`) and a plain form POST to the same
address, which cancels the ticket through the queue service as `DELETE /api/v1/tickets/{token}`
does. The form carries no CSRF token, on purpose: the page has no session, nothing but the secret
token in the address authorises the request, and a site that could forge the POST would need that
token, with which it could as well cancel the ticket directly. A staff session cookie that the
browser may also hold is never read here.

Answers carry `Referrer-Policy: no-referrer` (the address is the secret) and `Cache-Control:
no-store`; the access log cuts the token out of `/t/…` paths (aufruf.logs).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.deps import ClockDep, DatabaseDep, EventsDep, SettingsDep
from aufruf.errors import NotFound
from aufruf.offices import service as offices
from aufruf.queue import service as queue
from aufruf.queue.api import ticket_out
from aufruf.queue.events import EventHub
from aufruf.web.i18n import PUBLIC_LANGUAGES, gettext, language_cookies, language_of
from aufruf.web.templating import public_page_context

REFRESH_SECONDS = 30
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
# what the phone view shows of the ticket shape
SHOWN = ("number", "status", "people_ahead", "estimated_wait_minutes", "counter")


def status_messages(lang: str) -> dict[str, str]:
    """What the page says for each state of a ticket (`%(counter)s` filled in)."""
    return {
        "waiting": gettext(lang, "Please wait. Your number will be called on the screen."),
        "called": gettext(lang, "It's your turn: %(counter)s"),
        "serving": gettext(lang, "You are being served at %(counter)s."),
        "done": gettext(lang, "Your visit is finished. Thank you!"),
        "no_show": gettext(
            lang,
            "Your number was called, but you did not come. Please ask at the information desk.",
        ),
        "cancelled": gettext(lang, "You have left the queue. This number is no longer valid."),
        "closed": gettext(lang, "The queue has closed for today. This number is no longer valid."),
    }


def phone_strings(lang: str) -> dict[str, Any]:
    """The texts ticket.js shows, in the page's language."""
    return {
        "status": status_messages(lang),
        "minutes": gettext(lang, "about %(minutes)s min."),
        "soon": gettext(lang, "very soon"),
        "live": gettext(lang, "This page updates itself."),
        "offline": gettext(lang, "Connection lost. Trying again…"),
        "gone": gettext(lang, "There is no ticket for this link any more."),
    }


def wait_text(lang: str, minutes: int | None) -> str:
    if minutes is None:
        return "–"
    if minutes <= 0:
        return gettext(lang, "very soon")
    return gettext(lang, "about %(minutes)s min.") % {"minutes": minutes}


def status_text(lang: str, ticket: dict[str, Any]) -> str:
    template = status_messages(lang).get(ticket["status"], "")
    return template % {"counter": ticket.get("counter") or ""}


async def public_ticket(
    db: Database, clock: Clock, secret: str, token: str, lang: str
) -> tuple[dict[str, Any], str]:
    """The ticket's shown fields and its location's name; NotFound for an unknown token."""
    async with db.read() as session:
        row = await queue.ticket_by_token(session, secret, token)
        shape = msgspec.to_builtins(await ticket_out(session, row, clock.now()))
        location = next(
            (x for x in await offices.list_locations(session, lang) if x.id == row.location_id),
            None,
        )
    ticket = {key: shape.get(key) for key in SHOWN}
    return ticket, location.name if location else ""


def _missing(request: Request) -> Template:
    return Template(
        "display/ticket_missing.html",
        context=public_page_context(request),
        status_code=404,
        headers=PRIVATE_HEADERS,
    )


class PhoneViewPages(Controller):
    path = "/t/{token:str}"
    include_in_schema = False

    async def _page(
        self, request: Request, template: str, token: str, db, clock, settings, **extra: Any
    ) -> Template:
        status = extra.pop("status_code", 200)
        lang = language_of(request, PUBLIC_LANGUAGES)
        try:
            ticket, location = await public_ticket(db, clock, settings.secret_key, token, lang)
        except NotFound:
            return _missing(request)
        context = public_page_context(
            request,
            ticket=ticket,
            location_name=location,
            message=status_text(lang, ticket),
            wait=wait_text(lang, ticket["estimated_wait_minutes"]),
            refresh=REFRESH_SECONDS,
            config={"ticket": ticket, "strings": phone_strings(lang)},
            **extra,
        )
        return Template(
            template,
            context=context,
            status_code=status,
            cookies=language_cookies(request),
            headers=PRIVATE_HEADERS,
        )

    @get(summary="A ticket's live view")
    async def view(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Template:
        return await self._page(request, "display/ticket.html", token, db, clock, settings)

    @get("/leave", summary="Confirm leaving the queue")
    async def confirm_leave(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Template:
        return await self._page(request, "display/leave.html", token, db, clock, settings)

    @post("/leave", summary="Leave the queue", status_code=303)
    async def leave(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        events: EventsDep,
    ) -> Template | Redirect:
        try:
            await leave_queue(db, clock, events, settings.secret_key, token)
        except NotFound:
            return _missing(request)
        except queue.NotWaiting:
            return await self._page(
                request,
                "display/ticket.html",
                token,
                db,
                clock,
                settings,
                problem=True,
                status_code=409,
            )
        lang = request.query_params.get("lang")
        suffix = f"?lang={lang}" if lang in PUBLIC_LANGUAGES else ""
        return Redirect(f"/t/{token}{suffix}", status_code=303, headers=PRIVATE_HEADERS)


async def leave_queue(
    db: Database, clock: Clock, events: EventHub, secret: str, token: str
) -> None:
    """Cancel the ticket behind `token` as its holder (what DELETE /api/v1/tickets/{token}
    does); NotFound or NotWaiting (already called) otherwise."""
    change = queue.Change()
    async with db.write() as session:
        ticket = await queue.ticket_by_token(session, secret, token, for_update=True)
        await queue.cancel_ticket(session, change, ticket, clock.now(), "citizen")
    await events.publish(change.events)
