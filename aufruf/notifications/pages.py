"""The outbox for staff: `/admin/outbox` (the newest messages, by status) and
`/admin/outbox/{id}` (one message as it would be sent now).

Supervisors see the messages of appointments at their locations, an admin without locations
all of them. The list never shows the citizen's name or address; the detail page renders the
message at request time (its text carries the manage link, for staff to read out or forward)
and nothing of it is logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import select

from aufruf.auth.guards import PAGE_EXCEPTION_HANDLERS
from aufruf.auth.logic import Actor
from aufruf.booking.model import Appointment
from aufruf.db import pick_text
from aufruf.deps import ActorDep, ClockDep, DatabaseDep, SettingsDep
from aufruf.errors import Forbidden
from aufruf.notifications.model import STATUSES, OutboxMessage
from aufruf.notifications.render import MailConfig, NotApplicable, render_message
from aufruf.offices.model import Location
from aufruf.settings import Settings
from aufruf.web.i18n import gettext, language_cookies, language_of
from aufruf.web.templating import page_context

LIMIT = 200
# an SMTP answer may quote the recipient; the list shows no addresses
ADDRESS = re.compile(r"[^\s<>\"'@]+@[^\s<>\"'@]+")
ACTION = "location.manage"


def status_names(lang: str) -> dict[str, str]:
    return {
        "queued": gettext(lang, "queued"),
        "sending": gettext(lang, "sending"),
        "sent": gettext(lang, "sent"),
        "failed": gettext(lang, "failed"),
        "kept": gettext(lang, "kept"),
    }


def kind_names(lang: str) -> dict[str, str]:
    return {
        "booking_pending": gettext(lang, "Please confirm"),
        "booking_confirmed": gettext(lang, "Booking confirmed"),
        "booking_rescheduled": gettext(lang, "Appointment moved"),
        "booking_cancelled": gettext(lang, "Cancelled by the citizen"),
        "cancelled_by_office": gettext(lang, "Cancelled by the office"),
        "booking_reminder": gettext(lang, "Reminder"),
    }


def mail_config(settings: Settings) -> MailConfig:
    """The same configuration the delivery renders with (see Delivery.from_settings)."""
    return MailConfig(
        mail_from=settings.mail_from,
        public_url=settings.public_url or "http://127.0.0.1:8000",
        secret=settings.secret_key,
    )


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    kind_name: str
    status: str
    status_name: str
    created: str
    created_iso: str
    attempts: int
    last_error: str
    location_id: str
    location_name: str
    code: str


def _when(moment: datetime | None, zone: str | None, lang: str) -> str:
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone or "Europe/Berlin"))
    return format_datetime(local, format="short", locale=lang)


def _scope(actor: Actor):
    """The rows this actor may read: everything for an unbound admin, else its locations."""
    if actor.locations is None:
        return None
    return Appointment.location_id.in_(sorted(actor.locations))


def _may_read(actor: Actor, location: str | None) -> None:
    """403 unless the actor may manage `location` (a message without an appointment belongs
    to no location: only an admin of every location reads it)."""
    actor.require(ACTION, location=location)
    if location is None and actor.locations is not None:
        raise Forbidden("This message belongs to no location of yours.", reason="forbidden")


def _not_found(request: Request, message_id: int) -> Template:
    return Template(
        "admin/outbox_missing.html",
        context=page_context(request, message_id=message_id),
        status_code=404,
    )


class OutboxPages(Controller):
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/admin/outbox", summary="The outbox")
    async def outbox(self, request: Request, actor: ActorDep, db: DatabaseDep) -> Template:
        actor.require(ACTION)
        lang = language_of(request)
        wanted = request.query_params.get("status") or ""
        status = wanted if wanted in STATUSES else ""
        stmt = (
            select(OutboxMessage, Appointment.location_id, Appointment.code, Location)
            .outerjoin(Appointment, Appointment.id == OutboxMessage.appointment_id)
            .outerjoin(Location, Location.id == Appointment.location_id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(LIMIT)
        )
        scope = _scope(actor)
        if scope is not None:
            stmt = stmt.where(scope)
        if status:
            stmt = stmt.where(OutboxMessage.status == status)
        statuses = status_names(lang)
        kinds = kind_names(lang)
        async with db.read() as session:
            found = (await session.execute(stmt)).all()
        rows = [
            Row(
                id=message.id,
                kind=message.kind,
                kind_name=kinds.get(message.kind, message.kind),
                status=message.status,
                status_name=statuses.get(message.status, message.status),
                created=_when(message.created_at, location.timezone if location else None, lang),
                created_iso=message.created_at.isoformat(),
                attempts=message.attempts,
                last_error=ADDRESS.sub("…", message.last_error or ""),
                location_id=location_id or "",
                location_name=pick_text(location.name, lang) if location else "",
                code=code or "",
            )
            for message, location_id, code, location in found
        ]
        return Template(
            "admin/outbox.html",
            context=page_context(
                request,
                actor=actor,
                rows=rows,
                status=status,
                statuses=statuses,
                limit=LIMIT,
            ),
            cookies=language_cookies(request),
            headers={"Cache-Control": "no-store"},
        )

    @get("/admin/outbox/{message_id:int}", summary="One message of the outbox")
    async def message(
        self,
        request: Request,
        message_id: FromPath[int],
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Template:
        actor.require(ACTION)
        lang = language_of(request)
        now = clock.now()
        async with db.read() as session:
            message = await session.get(OutboxMessage, message_id)
            if message is None:
                return _not_found(request, message_id)
            appointment = (
                await session.get(Appointment, message.appointment_id)
                if message.appointment_id is not None
                else None
            )
            _may_read(actor, appointment.location_id if appointment else None)
            location = await session.get(Location, appointment.location_id) if appointment else None
            email = None
            reason = ""
            try:
                email = await render_message(session, message, mail_config(settings), now)
            except NotApplicable as exc:
                reason = str(exc)
        zone = location.timezone if location else None
        return Template(
            "admin/outbox_message.html",
            context=page_context(
                request,
                actor=actor,
                message=message,
                kind_name=kind_names(lang).get(message.kind, message.kind),
                status_name=status_names(lang).get(message.status, message.status),
                created=_when(message.created_at, zone, lang),
                sent=_when(message.sent_at, zone, lang),
                location_id=location.id if location else "",
                location_name=pick_text(location.name, lang) if location else "",
                code=appointment.code if appointment else "",
                email=email,
                reason=reason,
            ),
            cookies=language_cookies(request),
            headers={"Cache-Control": "no-store"},
        )
