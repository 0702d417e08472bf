"""Booking endpoints (CONTRACT.md): availability and appointments. Thin: validate, call the
service, shape the answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from aufruf.auth.guards import authenticate, has_credentials
from aufruf.booking import service
from aufruf.booking.model import Appointment
from aufruf.booking.proof import ProofOfWork, accept_proof
from aufruf.db import pick_text
from aufruf.deps import CacheDep, ClockDep, DatabaseDep, LimiterDep, SettingsDep
from aufruf.errors import NotFound, RateLimited
from aufruf.notifications.calendar import CalendarEntry, appointment_uid, calendar_file
from aufruf.offices import service as offices
from aufruf.ratelimit import client_address
from aufruf.responses import errors

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Start = Annotated[datetime, msgspec.Meta(tz=True, description="ISO 8601 with offset")]


class DayOut(msgspec.Struct):
    date: date
    slots: list[str]


class AvailabilityOut(msgspec.Struct):
    location: str
    days: list[DayOut]


class BookingIn(msgspec.Struct, forbid_unknown_fields=False):
    location: Slug
    services: Annotated[list[Slug], msgspec.Meta(min_length=1, max_length=20)]
    start: Start
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=service.NAME_MAX)]
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}$")] = "de"
    proof: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


class RescheduleIn(msgspec.Struct):
    start: Start


class AppointmentOut(msgspec.Struct):
    code: str
    status: str
    location: str
    start: str
    end: str
    services: list[str]
    token: str | None = None


Token = Annotated[
    str, PathParameter(min_length=1, max_length=100, description="The appointment's secret")
]


async def appointment_out(
    db_session, appointment: Appointment, token: str | None = None
) -> AppointmentOut:
    location = await offices.get_location(db_session, appointment.location_id)
    zone = ZoneInfo(location.timezone if location else "Europe/Berlin")
    need = await service.services_of(db_session, appointment.id)
    return AppointmentOut(
        code=appointment.code,
        status=appointment.status,
        location=appointment.location_id,
        start=appointment.start_at.astimezone(zone).isoformat(),
        end=appointment.end_at.astimezone(zone).isoformat(),
        services=[s for s, q in sorted(need.items()) for _ in range(q)],
        token=token,
    )


class AvailabilityController(Controller):
    path = "/api/v1/availability"
    tags = ["booking"]

    @get(summary="Free start times", responses=errors(400))
    async def availability(
        self,
        db: DatabaseDep,
        clock: ClockDep,
        cache: CacheDep,
        location: Annotated[str, QueryParameter(min_length=1, max_length=64)],
        service_ids: Annotated[
            list[str],
            QueryParameter(name="service", min_items=1, max_items=20, description="Repeat for two"),
        ],
        first: Annotated[date | None, QueryParameter(name="from")] = None,
        last: Annotated[date | None, QueryParameter(name="to", description="inclusive")] = None,
    ) -> AvailabilityOut:
        result = await service.availability(
            db, clock.now(), location, service_ids, first, last, cache=cache
        )
        return AvailabilityOut(
            location=result.location, days=[DayOut(day.date, day.texts) for day in result.days]
        )


class AppointmentController(Controller):
    path = "/api/v1/appointments"
    tags = ["booking"]

    @post(
        status_code=HTTP_201_CREATED,
        summary="Book an appointment",
        description=(
            "Public: needs an e-mail address. Staff (a session or a bearer token with the "
            "right to book for citizens at the location) may book without one, e.g. for a "
            "citizen on the phone."
        ),
        responses=errors(400, 401, 403, 409, 429),
    )
    async def create(
        self,
        request: Request,
        data: JSONBody[BookingIn],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        cache: CacheDep,
    ) -> AppointmentOut:
        now = clock.now()
        staff = has_credentials(request)
        if staff:
            actor = await authenticate(request, db, clock, settings)
            actor.require("booking.staff", location=data.location)
        else:
            client = client_address(
                request.client.host if request.client else None,
                request.headers.get("x-forwarded-for"),
                settings.trusted_proxies,
            )
            retry_after = await limiter.hit(f"book:{client}", settings.booking_rate_limit, now)
            if retry_after:
                raise RateLimited(
                    "You have made many bookings in a short time. "
                    "Please wait a minute and try again.",
                    retry_after=retry_after,
                )
        pow = ProofOfWork.from_settings(settings)
        # a public booking without a valid proof waits for the e-mail link (CONTRACT.md)
        unproven = not staff and pow.asked and not await accept_proof(db, pow, data.proof, now)
        booking = service.BookingRequest(
            location=data.location,
            services=list(data.services),
            start=data.start,
            name=data.name,
            email=data.email,
            phone=data.phone,
            language=data.language,
            by_staff=staff,
            pending=unproven,
        )
        booked = await service.book_at_once(db, settings, now, booking, cache)
        appointment, zone = booked.appointment, ZoneInfo(booked.timezone)
        return AppointmentOut(
            code=appointment.code,
            status=appointment.status,
            location=appointment.location_id,
            start=appointment.start_at.astimezone(zone).isoformat(),
            end=appointment.end_at.astimezone(zone).isoformat(),
            services=[s for s, q in sorted(booked.services.items()) for _ in range(q)],
            token=booked.token,
        )

    @get("/{token:str}", summary="An appointment by its secret link", responses=errors(404))
    async def read(self, token: Token, db: DatabaseDep, settings: SettingsDep) -> AppointmentOut:
        async with db.read() as session:
            appointment = await service.by_token(session, settings.secret_key, token)
            return await appointment_out(session, appointment)

    @delete(
        "/{token:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Cancel",
        responses=errors(404, 409),
    )
    async def cancel(
        self,
        token: Token,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> None:
        async with db.write() as session:
            appointment = await service.by_token(
                session, settings.secret_key, token, for_update=True
            )
            await service.cancel_by_citizen(session, appointment, clock.now())

    @post(
        "/{token:str}/reschedule",
        status_code=HTTP_200_OK,
        summary="Move to another start; the old time is kept if the new one is taken",
        responses=errors(400, 404, 409),
    )
    async def reschedule(
        self,
        token: Token,
        data: JSONBody[RescheduleIn],
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> AppointmentOut:
        async with db.write() as session:
            appointment = await service.by_token(
                session, settings.secret_key, token, for_update=True
            )
            await service.reschedule(session, appointment, data.start, clock.now())
            return await appointment_out(session, appointment)

    @post(
        "/{token:str}/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm a pending booking (double opt-in)",
        responses=errors(404, 409),
    )
    async def confirm(
        self,
        token: Token,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> AppointmentOut:
        async with db.write() as session:
            appointment = await service.by_token(
                session, settings.secret_key, token, for_update=True
            )
            await service.confirm(session, appointment, clock.now())
            return await appointment_out(session, appointment)

    @get(
        "/{token:str}/calendar.ics",
        media_type="text/calendar",
        summary="The appointment as an iCalendar file (METHOD:PUBLISH)",
        responses=errors(404),
    )
    async def calendar(
        self,
        token: Token,
        db: DatabaseDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        async with db.read() as session:
            appointment = await service.by_token(session, settings.secret_key, token)
            location = await offices.get_location(session, appointment.location_id)
            need = await service.services_of(session, appointment.id)
            names = {
                s.id: s.name for s in await offices.list_services(session, appointment.language)
            }
        summary_services = ", ".join(
            (f"{q}× " if q > 1 else "") + names.get(s, s) for s, q in sorted(need.items())
        )
        location_name = pick_text(location.name, appointment.language) if location else ""
        entry = CalendarEntry(
            uid=appointment_uid(appointment.id, settings.mail_from.rpartition("@")[2] or "aufruf"),
            sequence=appointment.sequence,
            start=appointment.start_at,
            end=appointment.end_at,
            timezone=location.timezone if location else "Europe/Berlin",
            summary=f"{location_name}: {summary_services}",
            location=f"{location_name}, {location.address}" if location else "",
            description=f"Code {appointment.code}",
            stamp=clock.now(),
            cancelled=appointment.status == "cancelled",
        )
        return Response(
            calendar_file(entry, "PUBLISH"),
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="termin-{appointment.code}.ics"'
            },
        )


class ProofChallengeController(Controller):
    path = "/api/v1/proof-challenge"
    tags = ["booking"]

    @get(
        summary="An ALTCHA proof-of-work challenge for a public booking",
        description=(
            "Only while AUFRUF_POW_DIFFICULTY > 0 (otherwise 404). Solve it (the ALTCHA "
            "widget or library) and send the base64 payload as `proof` with the booking; "
            "each proof is accepted once, within 30 minutes. A booking without a valid "
            "proof is accepted as `pending` and confirmed through the e-mail link."
        ),
        responses=errors(404),
    )
    async def challenge(self, clock: ClockDep, settings: SettingsDep) -> dict:
        pow = ProofOfWork.from_settings(settings)
        if not pow.asked:
            raise NotFound("No proof of work is asked of bookings here.")
        return pow.challenge(clock.now())
