"""The citizen's own appointment, reached by its secret link (`/a/{token}`): the confirmation
after booking, the manage page, cancelling (with a confirm step), moving it, and the double
opt-in link from the e-mail.

GET never changes anything: mail scanners open the links of an e-mail, so the confirmation
link shows a page with one button and the POST confirms. The token is the only credential
(no cookie), so these forms need no CSRF token. Pages under /a/ are not cached and send no
referrer; the access log cuts the token out of the path (aufruf.logs).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from aufruf.booking import service, views
from aufruf.booking.model import Appointment
from aufruf.booking.pages import page, page_language, redirect
from aufruf.booking.steps import parse_instant
from aufruf.db import Database, pick_text
from aufruf.deps import CacheDep, ClockDep, DatabaseDep, SettingsDep
from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.offices import service as offices
from aufruf.settings import Settings
from aufruf.web.i18n import gettext

PRIVATE = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
NOTICES = ("moved", "cancelled", "confirmed")


def not_found(request: Request) -> Template:
    return page(request, "booking/not_found.html", status_code=404, headers=PRIVATE)


def manage_url(request: Request, settings: Settings, token: str) -> str:
    base = settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/a/{token}"


async def _load(db: Database, settings: Settings, token: str) -> Appointment | None:
    try:
        async with db.read() as session:
            return await service.by_token(session, settings.secret_key, token)
    except NotFound:
        return None


async def _view(
    db: Database, appointment: Appointment, lang: str, now: datetime
) -> views.AppointmentView:
    async with db.read() as session:
        return await views.appointment_view(session, appointment, lang, now)


class ManagePages(Controller):
    path = "/a/{token:str}"
    include_in_schema = False

    @get("/", summary="The citizen's appointment")
    async def show(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        return await self._appointment_page(request, token, db, clock, settings, "manage")

    @get("/booked", summary="The confirmation after booking")
    async def booked(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        return await self._appointment_page(request, token, db, clock, settings, "booked")

    async def _appointment_page(
        self, request: Request, token: str, db, clock, settings, kind: str
    ) -> Response:
        appointment = await _load(db, settings, token)
        if appointment is None:
            return not_found(request)
        if kind == "booked" and appointment.status not in ("pending", "confirmed"):
            return redirect(request, f"/a/{token}")
        lang = page_language(request, appointment.language)
        view = await _view(db, appointment, lang, clock.now())
        notice = request.query_params.get("done")
        return page(
            request,
            f"booking/{kind}.html",
            headers=PRIVATE,
            language=appointment.language,
            appointment=view,
            token=token,
            notice=notice if notice in NOTICES else "",
            manage_url=manage_url(request, settings, token),
            calendar_url=f"/api/v1/appointments/{token}/calendar.ics",
            qr=views.qr_svg(
                view.code, gettext(lang, "QR code of the booking code") + " " + " ".join(view.code)
            ),
        )

    @get("/cancel", summary="Cancel: the confirm step")
    async def cancel_form(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        return await _confirm_step(
            request, token, db, clock, settings, "booking/cancel.html", ("pending", "confirmed")
        )

    @post("/cancel", summary="Cancel the appointment")
    async def cancel(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        try:
            async with db.write() as session:
                appointment = await service.by_token(
                    session, settings.secret_key, token, for_update=True
                )
                await service.cancel_by_citizen(session, appointment, clock.now())
        except NotFound:
            return not_found(request)
        except Conflict:
            return redirect(request, f"/a/{token}")
        return redirect(request, f"/a/{token}?done=cancelled")

    @get("/move", summary="Move: choose a new day, then a new time")
    async def move_form(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        cache: CacheDep,
        settings: SettingsDep,
    ) -> Response:
        appointment = await _load(db, settings, token)
        if appointment is None:
            return not_found(request)
        if appointment.status not in ("pending", "confirmed"):
            return redirect(request, f"/a/{token}")
        try:
            day = date.fromisoformat(request.query_params.get("day") or "")
        except ValueError:
            day = None
        return await _move_page(request, token, appointment, day, db, clock, cache)

    @post("/move", summary="Move the appointment to a new time")
    async def move(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        cache: CacheDep,
        settings: SettingsDep,
    ) -> Response:
        form = await request.form()
        start = parse_instant(str(form.get("start") or ""))
        appointment = await _load(db, settings, token)
        if appointment is None:
            return not_found(request)
        if start is None:
            return redirect(request, f"/a/{token}/move")
        try:
            async with db.write() as session:
                current = await service.by_token(
                    session, settings.secret_key, token, for_update=True
                )
                await service.reschedule(session, current, start, clock.now())
        except (service.SlotTaken, InvalidInput):
            zone = ZoneInfo(await _zone(db, appointment.location_id))
            return await _move_page(
                request,
                token,
                appointment,
                start.astimezone(zone).date(),
                db,
                clock,
                cache,
                taken=True,
            )
        except Conflict:
            return redirect(request, f"/a/{token}")
        return redirect(request, f"/a/{token}?done=moved")

    @get("/confirm", summary="Double opt-in: a page with one button")
    async def confirm_form(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        return await _confirm_step(
            request, token, db, clock, settings, "booking/confirm.html", ("pending",)
        )

    @post("/confirm", summary="Confirm the appointment (double opt-in)")
    async def confirm(
        self,
        request: Request,
        token: FromPath[str],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response:
        try:
            async with db.write() as session:
                appointment = await service.by_token(
                    session, settings.secret_key, token, for_update=True
                )
                await service.confirm(session, appointment, clock.now())
        except NotFound:
            return not_found(request)
        except Conflict as exc:
            if exc.reason == "expired":
                return page(request, "booking/expired.html", status_code=409, headers=PRIVATE)
            return redirect(request, f"/a/{token}")
        return redirect(request, f"/a/{token}?done=confirmed")


async def _confirm_step(
    request: Request,
    token: str,
    db: Database,
    clock,
    settings: Settings,
    template: str,
    statuses: tuple[str, ...],
) -> Response:
    """The page with one button before a change (cancel, confirm), for an appointment in one
    of `statuses`; any other goes back to the appointment's page."""
    appointment = await _load(db, settings, token)
    if appointment is None:
        return not_found(request)
    if appointment.status not in statuses:
        return redirect(request, f"/a/{token}")
    lang = page_language(request, appointment.language)
    view = await _view(db, appointment, lang, clock.now())
    return page(
        request,
        template,
        headers=PRIVATE,
        language=appointment.language,
        appointment=view,
        token=token,
    )


async def _zone(db: Database, location_id: str) -> str:
    async with db.read() as session:
        location = await offices.get_location(session, location_id)
    return location.timezone if location else "Europe/Berlin"


async def _move_page(
    request: Request,
    token: str,
    appointment: Appointment,
    day: date | None,
    db,
    clock,
    cache,
    *,
    taken: bool = False,
) -> Template:
    lang = page_language(request, appointment.language)
    now = clock.now()
    async with db.read() as session:
        need = await service.services_of(session, appointment.id)
        location = await offices.get_location(session, appointment.location_id)
    units = [s for s, q in sorted(need.items()) for _ in range(q)]
    found = await service.availability(db, now, appointment.location_id, units, cache=cache)
    zone = ZoneInfo(location.timezone if location else "Europe/Berlin")
    view = await _view(db, appointment, lang, now)
    values = {
        "appointment": view,
        "token": token,
        "taken": taken,
        "language": appointment.language,
    }
    chosen = next((d for d in found.days if d.date == day), None) if day else None
    if chosen is None:
        first, last = found.days[0].date, found.days[-1].date
        async with db.read() as session:
            rules = await offices.location_rules(session, appointment.location_id, first, last)
        weeks = views.calendar(found.days, rules, lang, lambda d: f"/a/{token}/move?day={d}")
        return page(
            request,
            "booking/move_day.html",
            headers=PRIVATE,
            weeks=weeks,
            place=pick_text(location.name, lang) if location else "",
            **values,
        )
    return page(
        request,
        "booking/move_time.html",
        status_code=409 if taken else 200,
        headers=PRIVATE,
        day_text=views.day_text(chosen.date, lang),
        times=views.free_times(chosen, zone, lang),
        **values,
    )
