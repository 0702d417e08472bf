"""The desk's one read of its own: a location's appointments of a day, for staff.

Codes, times, services, states and the ticket number once checked in; no names, no contact
data (those stay with the booking and are not needed at the counter)."""

from __future__ import annotations

from datetime import date as Date
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import QueryParameter

from aufruf.deps import ActorDep, ClockDep, DatabaseDep
from aufruf.display.service import appointments_of_day
from aufruf.queue.api import LocationId, errors


class DayAppointmentOut(msgspec.Struct):
    code: str
    start: str  # ISO 8601 with the location's offset
    end: str
    services: list[str]  # a service booked twice is named twice
    status: str
    ticket: str | None  # the ticket's number once checked in


class DeskAppointmentController(Controller):
    path = "/api/v1/locations/{location:str}"
    tags = ["desk"]

    @get(
        "/appointments",
        summary="The location's appointments of a day (staff)",
        description=(
            "By start time; `date` is a local date of the location (default: today). "
            "Every state is listed; no names or contact data."
        ),
        responses=errors(400, 401, 403, 404),
    )
    async def of_day(
        self,
        location: LocationId,
        actor: ActorDep,
        db: DatabaseDep,
        clock: ClockDep,
        date: Annotated[
            Date | None, QueryParameter(description="Local date YYYY-MM-DD; default today")
        ] = None,
    ) -> list[DayAppointmentOut]:
        actor.require("queue.read", location=location)
        async with db.read() as session:
            found = await appointments_of_day(session, location, date, clock.now())
        return [DayAppointmentOut(**vars(a)) for a in found]
