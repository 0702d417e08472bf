"""Small builders for a directory in the database, for tests that are not about the file format."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from aufruf.booking.service import Booked, BookingRequest, book, bump_versions
from aufruf.db import Database
from aufruf.offices.model import (
    Authority,
    Closure,
    Counter,
    CounterService,
    Location,
    LocationService,
    OpeningWindow,
    Service,
    ServiceGroup,
)


def _hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


async def a_location(
    db: Database,
    location_id: str = "amt",
    *,
    places: int = 1,
    grid: int = 10,
    hours: str = "08:00-12:00",
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
    services: dict[str, int] | None = None,
    max_quantity: int = 5,
    lead_minutes: int = 120,
    horizon_days: int = 14,
    holiday_state: str | None = "NW",
    double_opt_in: bool = False,
    holdback_minutes: int = 0,
    daily_cap: dict[str, int] | None = None,
    parallel_cap: dict[str, int] | None = None,
    closures: list[tuple[date, date]] = (),
    counters: int = 3,
    queue: dict | None = None,
) -> str:
    """A location open on `weekdays` during `hours` ("08:00-12:00,13:00-15:00") with `places`
    appointment places, offering `services` (id -> minutes, default one 10-minute service)."""
    services = services or {"pass": 10}
    async with db.write() as session:
        if await session.get(Authority, "amt") is None:
            session.add(
                Authority(id="amt", name={"de": "Amt", "en": "Office"}, position=0, active=True)
            )
            session.add(ServiceGroup(id="g", letter="A", name={"de": "Gruppe"}, active=True))
            await session.flush()
        for service_id, minutes in services.items():
            if await session.get(Service, service_id) is None:
                session.add(
                    Service(
                        id=service_id,
                        authority_id="amt",
                        group_id="g",
                        name={"de": service_id.capitalize(), "en": service_id},
                        bring={},
                        note={},
                        duration_minutes=minutes,
                        max_quantity=max_quantity,
                        position=0,
                        active=True,
                    )
                )
        session.add(
            Location(
                id=location_id,
                authority_id="amt",
                name={"de": f"Standort {location_id}", "en": f"Location {location_id}"},
                note={},
                address="Rathausstraße 11, 58095 Hagen",
                timezone="Europe/Berlin",
                holiday_state=holiday_state,
                slot_minutes=grid,
                lead_minutes=lead_minutes,
                horizon_days=horizon_days,
                cancel_holdback_minutes=holdback_minutes,
                double_opt_in=double_opt_in,
                queue=queue or {},
                position=0,
                active=True,
            )
        )
        await session.flush()
        for service_id in services:
            session.add(
                LocationService(
                    location_id=location_id,
                    service_id=service_id,
                    daily_cap=(daily_cap or {}).get(service_id),
                    parallel_cap=(parallel_cap or {}).get(service_id),
                    active=True,
                )
            )
        for weekday in weekdays:
            for window in hours.split(","):
                opens, closes = window.split("-")
                session.add(
                    OpeningWindow(
                        location_id=location_id,
                        weekday=weekday,
                        opens=_hm(opens),
                        closes=_hm(closes),
                        appointment_counters=places,
                    )
                )
        for first, last in closures:
            session.add(
                Closure(
                    location_id=location_id, first_day=first, last_day=last, reason={"de": "Zu"}
                )
            )
        for n in range(1, counters + 1):
            session.add(
                Counter(
                    id=f"{location_id}-{n}", location_id=location_id, name=f"Platz {n}", active=True
                )
            )
            await session.flush()
            for service_id in services:
                session.add(CounterService(counter_id=f"{location_id}-{n}", service_id=service_id))
        await session.flush()
        await bump_versions(session, [location_id], rules=True)
    return location_id


async def a_booking(
    db: Database,
    start: datetime,
    services: Sequence[str] = ("pass",),
    location_id: str = "amt",
) -> Booked:
    """An appointment at `start`, booked the day before (name E, e@example.org)."""
    from tests.conftest import SECRET

    async with db.write() as session:
        return await book(
            session,
            SECRET,
            start - timedelta(days=1),
            BookingRequest(
                location=location_id,
                services=list(services),
                start=start,
                name="E",
                email="e@example.org",
            ),
        )
