"""Small builders for availability tests: a location in Berlin, instants written as local wall
times, bookings as added usage. Every `now` handed to the logic is UTC, as the Clock gives it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from aufruf.booking.logic import (
    Claim,
    LocationRules,
    ServiceRule,
    Usage,
    Window,
    claims_for_start,
)

BERLIN = ZoneInfo("Europe/Berlin")
MON_TO_FRI = (0, 1, 2, 3, 4)
SUNDAY = 6


def a_service(
    minutes: int,
    *,
    max_quantity: int = 5,
    daily_cap: int | None = None,
    parallel_cap: int | None = None,
) -> ServiceRule:
    return ServiceRule(minutes, max_quantity, daily_cap, parallel_cap)


def a_location(
    *,
    places: int = 1,
    grid: int = 10,
    hours: str = "08:00-12:00",
    days: Iterable[int] = MON_TO_FRI,
    services: Mapping[str, ServiceRule] | None = None,
    lead: int = 120,
    horizon: int = 14,
    closed: Iterable[date] = (),
) -> LocationRules:
    """A location in Europe/Berlin open `hours` ("08:00-12:00, 13:00-15:00") on `days`
    (Monday = 0) with `places` counters taking appointments in every window."""
    windows = tuple(
        Window(time.fromisoformat(opens), time.fromisoformat(closes), places)
        for opens, closes in (part.strip().split("-") for part in hours.split(","))
    )
    return LocationRules(
        timezone="Europe/Berlin",
        slot_minutes=grid,
        weekly=dict.fromkeys(days, windows),
        services=dict(services or {"reisepass": a_service(15), "meldebescheinigung": a_service(5)}),
        closed_days=frozenset(closed),
        lead_minutes=lead,
        horizon_days=horizon,
    )


def local(text: str) -> datetime:
    """A Berlin wall time ("2026-03-09 08:00") as an aware datetime; the first of two in a fold."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def instant(text: str) -> datetime:
    """The UTC instant of a Berlin wall time ("2026-03-09 08:00")."""
    return local(text).astimezone(UTC)


def utc(text: str) -> datetime:
    """A UTC instant written in UTC ("2026-03-29 01:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall(at: datetime) -> str:
    """The Berlin wall-clock time of an instant, "HH:MM"."""
    return at.astimezone(BERLIN).strftime("%H:%M")


def walls(starts: Iterable[datetime]) -> list[str]:
    return [wall(at) for at in starts]


def with_claims(usage: Usage, claims: Iterable[Claim]) -> Usage:
    """The usage after a booking took `claims`."""
    used = dict(usage.used)
    for claim in claims:
        used[claim.key] = used.get(claim.key, 0) + claim.n
    return Usage(used)


def booked(
    rules: LocationRules, need: Mapping[str, int], at: str, usage: Usage | None = None
) -> Usage:
    """The usage after booking `need` at the Berlin wall time `at`."""
    return with_claims(usage or Usage(), claims_for_start(rules, need, instant(at)))
