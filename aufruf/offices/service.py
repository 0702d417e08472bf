"""Reading the directory: what the public API lists and the rules availability works from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking.logic import LocationRules, ServiceRule, Window
from aufruf.db import pick_text
from aufruf.errors import NotFound
from aufruf.offices.model import (
    Authority,
    Closure,
    Kiosk,
    Location,
    LocationService,
    OpeningWindow,
    Printer,
    Service,
)


@dataclass(frozen=True)
class LocationInfo:
    id: str
    name: str
    authority: str
    address: str
    timezone: str
    services: list[str]


@dataclass(frozen=True)
class AuthorityInfo:
    id: str
    name: str


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    name: str
    authority: str
    duration_minutes: int
    max_quantity: int
    bring: str
    note: str = ""


async def list_authorities(session: AsyncSession, language: str = "de") -> list[AuthorityInfo]:
    """Active authorities that offer at least one active service, in the file's order."""
    rows = await session.scalars(
        select(Authority)
        .where(
            Authority.active,
            Authority.id.in_(select(Service.authority_id).where(Service.active)),
        )
        .order_by(Authority.position, Authority.id)
    )
    return [AuthorityInfo(id=row.id, name=pick_text(row.name, language)) for row in rows]


async def list_locations(session: AsyncSession, language: str = "de") -> list[LocationInfo]:
    offered = await session.execute(
        select(LocationService.location_id, LocationService.service_id)
        .join(Service, Service.id == LocationService.service_id)
        .where(LocationService.active, Service.active)
        .order_by(Service.position, Service.id)
    )
    by_location: dict[str, list[str]] = defaultdict(list)
    for location_id, service_id in offered:
        by_location[location_id].append(service_id)
    rows = await session.scalars(
        select(Location).where(Location.active).order_by(Location.position, Location.id)
    )
    return [
        LocationInfo(
            id=row.id,
            name=pick_text(row.name, language),
            authority=row.authority_id,
            address=row.address,
            timezone=row.timezone,
            services=by_location.get(row.id, []),
        )
        for row in rows
    ]


async def list_services(session: AsyncSession, language: str = "de") -> list[ServiceInfo]:
    rows = await session.scalars(
        select(Service)
        .join(Authority, Authority.id == Service.authority_id)
        .where(Service.active)
        .order_by(Authority.position, Service.position, Service.id)
    )
    return [
        ServiceInfo(
            id=row.id,
            name=pick_text(row.name, language),
            authority=row.authority_id,
            duration_minutes=row.duration_minutes,
            max_quantity=row.max_quantity,
            bring=pick_text(row.bring, language),
            note=pick_text(row.note, language),
        )
        for row in rows
    ]


async def get_location(session: AsyncSession, location_id: str) -> Location | None:
    location = await session.get(Location, location_id)
    return location if location is not None and location.active else None


@lru_cache(maxsize=256)
def public_holidays(state: str, year: int) -> frozenset[date]:
    return frozenset(holidays.Germany(subdiv=state, years=year).keys())


def closed_days(
    location: Location, closures: list[Closure], first: date, last: date
) -> frozenset[date]:
    """Closures and the public holidays of the location's state between first and last."""
    days: set[date] = set()
    if location.holiday_state:
        for year in range(first.year, last.year + 1):
            days |= public_holidays(location.holiday_state, year)
    for closure in closures:
        day = max(closure.first_day, first)
        while day <= min(closure.last_day, last):
            days.add(day)
            day += timedelta(days=1)
    return frozenset(d for d in days if first <= d <= last)


async def closed_days_of(
    session: AsyncSession, location: Location, first: date, last: date
) -> frozenset[date]:
    """The days from first to last on which the location is closed (closures, holidays)."""
    closures = list(
        await session.scalars(
            select(Closure).where(
                Closure.location_id == location.id,
                Closure.last_day >= first,
                Closure.first_day <= last,
            )
        )
    )
    return closed_days(location, closures, first, last)


async def next_opening(
    session: AsyncSession, location: Location, now: datetime, days: int = 14
) -> datetime | None:
    """When the location's next opening window starts after `now`, on a day it is not closed
    (closures, public holidays), looking `days` ahead; None when it does not open by then."""
    zone = ZoneInfo(location.timezone)
    local = now.astimezone(zone)
    opens_at: dict[int, list] = defaultdict(list)
    for weekday, opens in await session.execute(
        select(OpeningWindow.weekday, OpeningWindow.opens)
        .where(OpeningWindow.location_id == location.id)
        .order_by(OpeningWindow.weekday, OpeningWindow.opens)
    ):
        opens_at[weekday].append(opens)
    closed = await closed_days_of(session, location, local.date(), local.date() + timedelta(days))
    for offset in range(days + 1):
        day = local.date() + timedelta(days=offset)
        if day in closed:
            continue
        for opens in opens_at[day.weekday()]:
            start = datetime.combine(day, opens, tzinfo=zone)
            if start > local:
                return start
    return None


async def location_rules(
    session: AsyncSession, location_id: str, first: date, last: date
) -> LocationRules:
    """The booking rules of an active location for the local days first..last."""
    location = await get_location(session, location_id)
    if location is None:
        raise NotFound(f"There is no location {location_id!r}.")
    windows = await session.scalars(
        select(OpeningWindow)
        .where(OpeningWindow.location_id == location_id)
        .order_by(OpeningWindow.weekday, OpeningWindow.opens)
    )
    weekly: dict[int, list[Window]] = defaultdict(list)
    for w in windows:
        weekly[w.weekday].append(Window(w.opens, w.closes, w.appointment_counters))
    closures = list(
        await session.scalars(
            select(Closure).where(
                Closure.location_id == location_id,
                Closure.last_day >= first,
                Closure.first_day <= last,
            )
        )
    )
    offered = await session.execute(
        select(Service, LocationService)
        .join(LocationService, LocationService.service_id == Service.id)
        .where(LocationService.location_id == location_id, LocationService.active, Service.active)
    )
    services = {
        service.id: ServiceRule(
            duration_minutes=offer.duration_minutes or service.duration_minutes,
            max_quantity=service.max_quantity,
            daily_cap=offer.daily_cap,
            parallel_cap=offer.parallel_cap,
        )
        for service, offer in offered
    }
    return LocationRules(
        timezone=location.timezone,
        slot_minutes=location.slot_minutes,
        weekly={day: tuple(ws) for day, ws in weekly.items()},
        services=services,
        closed_days=closed_days(location, closures, first, last),
        lead_minutes=location.lead_minutes,
        horizon_days=location.horizon_days,
    )


async def get_printer(session: AsyncSession, printer_id: str) -> Printer | None:
    """An active printer, or None."""
    printer = await session.get(Printer, printer_id)
    return printer if printer is not None and printer.active else None


async def kiosk_printer(session: AsyncSession, kiosk_id: str) -> Printer | None:
    """The active printer the kiosk prints its tickets on, or None."""
    kiosk = await session.get(Kiosk, kiosk_id)
    if kiosk is None or not kiosk.active or kiosk.printer_id is None:
        return None
    return await get_printer(session, kiosk.printer_id)


async def printers_at(session: AsyncSession, location_ids: list[str] | None) -> list[Printer]:
    """The active printers of the given locations (None: of every location), by location and
    name."""
    stmt = select(Printer).where(Printer.active).order_by(Printer.location_id, Printer.name)
    if location_ids is not None:
        stmt = stmt.where(Printer.location_id.in_(location_ids))
    return list(await session.scalars(stmt))
