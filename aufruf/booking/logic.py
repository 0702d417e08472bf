"""Availability: which start times are free. Pure: plain data in, plain data out.

The capacity model (ARCHITECTURE.md rule 1): a location's day is cut into grid slots inside
each opening window; a slot has as many appointment places as counters take appointments in
that window. An appointment holds one place in every slot it covers and must fit inside one
window. Per service and location, optional caps limit the units a day and the units starting
at one instant. Everything a booking must claim is said by `claims_for_start`, and a start is
free exactly when every one of its claims fits: availability and booking share one definition.
"""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "0O1IL")
CODE_LENGTH = 6

SLOT = "slot"
DAY = "day"
START = "start"


@dataclass(frozen=True)
class Window:
    """An opening window of a weekday, local times, and the counters taking appointments."""

    opens: time
    closes: time
    places: int


@dataclass(frozen=True)
class ServiceRule:
    duration_minutes: int
    max_quantity: int = 1
    daily_cap: int | None = None
    parallel_cap: int | None = None


@dataclass(frozen=True)
class LocationRules:
    timezone: str
    slot_minutes: int
    weekly: Mapping[int, tuple[Window, ...]]  # Monday = 0
    services: Mapping[str, ServiceRule]
    closed_days: frozenset[date] = frozenset()  # closures and public holidays
    lead_minutes: int = 120
    horizon_days: int = 14

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Claim:
    """Places a booking takes: `n` in the row (kind, service, at) whose capacity is `capacity`."""

    kind: str
    service: str  # "" for slots
    at: datetime  # UTC; for DAY the local midnight of the day
    n: int
    capacity: int

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.kind, self.service, self.at)


@dataclass(frozen=True)
class Usage:
    """What is claimed already: (kind, service, at) -> used."""

    used: Mapping[tuple[str, str, datetime], int] = field(default_factory=dict)

    def fits(self, claim: Claim) -> bool:
        return self.used.get(claim.key, 0) + claim.n <= claim.capacity


class NotBookable(ValueError):
    """A start that can never be booked under the rules; `field`/`reason` say why."""

    def __init__(self, reason: str, message: str, field: str = "start") -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


def appointment_minutes(rules: LocationRules, need: Mapping[str, int]) -> int:
    """The length of an appointment for `need` (service -> quantity): the sum of the
    durations, rounded up to the location's grid."""
    total = sum(rules.services[s].duration_minutes * q for s, q in need.items())
    grid = rules.slot_minutes
    return max(grid, math.ceil(total / grid) * grid)


def local_day_bounds(rules: LocationRules, day: date) -> tuple[datetime, datetime]:
    """The UTC instants of the local midnights that start and end `day`."""
    zone = rules.zone
    return wall_instant(day, time(0), zone), wall_instant(day + timedelta(days=1), time(0), zone)


def wall_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first UTC instant at which the local clock shows `wall` or later on `day`.

    An ambiguous wall time (the repeated hour in autumn) is its first occurrence; a wall time
    that does not exist (the skipped hour in spring) is the instant the clock jumps past it."""
    local = datetime.combine(day, wall, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # in the gap: search the minutes between the two readings for the jump
    at = local.replace(fold=1).astimezone(UTC)
    while at.astimezone(zone).replace(tzinfo=None) < local.replace(tzinfo=None):
        at += timedelta(minutes=1)
    return at


def windows_on(rules: LocationRules, day: date) -> list[tuple[datetime, datetime, int]]:
    """The opening windows of a local day as UTC intervals with their places; none on a
    closed day. Bounds are local wall times, so a window keeps its wall-clock hours across a
    daylight-saving change and its real length follows the change."""
    if day in rules.closed_days:
        return []
    zone = rules.zone
    result = []
    for window in rules.weekly.get(day.weekday(), ()):
        opens = wall_instant(day, window.opens, zone)
        closes = wall_instant(day, window.closes, zone)
        if opens < closes:
            result.append((opens, closes, window.places))
    return result


def slot_starts(opens: datetime, closes: datetime, grid_minutes: int) -> Iterator[datetime]:
    step = timedelta(minutes=grid_minutes)
    at = opens
    while at < closes:
        yield at
        at += step


def claims_for_start(rules: LocationRules, need: Mapping[str, int], start: datetime) -> list[Claim]:
    """Everything a booking for `need` at `start` must claim, in a fixed order (slots by
    time, then caps). Raises NotBookable when the start is not a grid start inside an
    opening window that leaves room for the whole appointment."""
    start = start.astimezone(UTC)
    day = start.astimezone(rules.zone).date()
    length = timedelta(minutes=appointment_minutes(rules, need))
    for opens, closes, places in windows_on(rules, day):
        if not opens <= start < closes:
            continue
        offset = (start - opens).total_seconds()
        if offset % (rules.slot_minutes * 60):
            raise NotBookable("off_grid", "The start is not on the location's time grid.")
        if start + length > closes:
            raise NotBookable("too_long", "The appointment does not fit before the window closes.")
        if places <= 0:
            raise NotBookable("closed", "No appointments are taken at this time.")
        claims = [
            Claim(SLOT, "", at, 1, places)
            for at in slot_starts(start, start + length, rules.slot_minutes)
        ]
        day_start = local_day_bounds(rules, day)[0]
        for service in sorted(need):
            rule, quantity = rules.services[service], need[service]
            if rule.daily_cap is not None:
                claims.append(Claim(DAY, service, day_start, quantity, rule.daily_cap))
            if rule.parallel_cap is not None:
                claims.append(Claim(START, service, start, quantity, rule.parallel_cap))
        return claims
    raise NotBookable("closed", "The location is closed at this time.")


def bookable_days(
    rules: LocationRules, now: datetime, first: date | None, last: date | None
) -> list[date]:
    """The local days from `first` to `last` (inclusive) within today ... today + horizon."""
    today = now.astimezone(rules.zone).date()
    horizon_end = today + timedelta(days=rules.horizon_days)
    first = max(first or today, today)
    last = min(last or horizon_end, horizon_end)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def check_start(
    rules: LocationRules, need: Mapping[str, int], start: datetime, now: datetime
) -> list[Claim]:
    """The claims of a start the rules allow now (lead time, horizon, grid, window).
    Whether the places are still free is the database's decision."""
    start, now = start.astimezone(UTC), now.astimezone(UTC)
    if start < now + timedelta(minutes=rules.lead_minutes):
        reason = "in_past" if start < now else "too_soon"
        raise NotBookable(
            reason, f"The start is too soon: book at least {rules.lead_minutes} minutes ahead."
        )
    day = start.astimezone(rules.zone).date()
    if day > now.astimezone(rules.zone).date() + timedelta(days=rules.horizon_days):
        raise NotBookable(
            "beyond_horizon", f"Appointments can be booked up to {rules.horizon_days} days ahead."
        )
    return claims_for_start(rules, need, start)


def free_starts(
    rules: LocationRules,
    need: Mapping[str, int],
    usage: Usage,
    now: datetime,
    first: date | None = None,
    last: date | None = None,
) -> dict[date, list[datetime]]:
    """Every start at which an appointment for `need` can be booked now, by local day.

    A start is returned when the whole appointment fits inside one opening window, every
    slot it covers has a free place, every cap of its services has room, it is not earlier
    than now + the lead time and its day is not after today + the horizon. Days in the range
    with no free start are present with an empty list. (The same starts as checking
    `claims_for_start` for every grid start, computed in one pass per window.)"""
    now = now.astimezone(UTC)  # lead time is real elapsed time, whatever zone `now` is given in
    earliest = now + timedelta(minutes=rules.lead_minutes)
    length = timedelta(minutes=appointment_minutes(rules, need))
    grid = timedelta(minutes=rules.slot_minutes)
    span = round(length / grid)
    used = usage.used
    caps = [(s, q, rules.services[s]) for s, q in need.items()]
    capped_day = [(s, q, r.daily_cap) for s, q, r in caps if r.daily_cap is not None]
    capped_start = [(s, q, r.parallel_cap) for s, q, r in caps if r.parallel_cap is not None]
    result: dict[date, list[datetime]] = {}
    for day in bookable_days(rules, now, first, last):
        starts: list[datetime] = []
        result[day] = starts
        midnight = local_day_bounds(rules, day)[0]
        if any(used.get((DAY, s, midnight), 0) + q > cap for s, q, cap in capped_day):
            continue
        for opens, closes, places in windows_on(rules, day):
            if places <= 0:
                continue
            slots = list(slot_starts(opens, closes, rules.slot_minutes))
            full = [used.get((SLOT, "", at), 0) + 1 > places for at in slots]
            blocked = sum(full[:span])  # full slots among those a start at slots[0] covers
            for i, start in enumerate(slots):
                if i:
                    blocked += (full[i + span - 1] if i + span - 1 < len(full) else 0) - full[i - 1]
                if start + length > closes:
                    break
                if blocked or start < earliest:
                    continue
                if any(used.get((START, s, start), 0) + q > cap for s, q, cap in capped_start):
                    continue
                starts.append(start)
    return result


def need_of(services: list[str]) -> dict[str, int]:
    """A multiset of services: a service named twice counts twice (two passports)."""
    return dict(Counter(services))


def new_code(rng: random.Random | None = None) -> str:
    """A booking code: 6 characters without look-alikes (no 0/O, 1/I/L)."""
    pick = (rng or random.SystemRandom()).choice
    return "".join(pick(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """A code as typed or scanned: any case, spaces and dashes ignored."""
    return "".join(ch for ch in text.upper() if ch.isalnum())
