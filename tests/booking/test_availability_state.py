"""The instance's availability state: bookings committed here bring it forward in place,
and it always agrees with what the database says."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from aufruf.booking import service
from aufruf.booking.service import AvailabilityCache, BookingRequest, SlotTaken
from tests.builders import a_location
from tests.conftest import SECRET

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
TUESDAY = date(2026, 11, 24)


def starts_on(day: date, hours: range) -> list[datetime]:
    return [
        datetime(day.year, day.month, day.day, h - 1, m, tzinfo=UTC)
        for h in hours
        for m in range(0, 60, 10)
    ]


async def book(db, cache: AvailabilityCache | None, n: int, start: datetime, services=("pass",)):
    request = BookingRequest("amt", list(services), start, f"P {n}", f"p{n}@example.org")
    try:
        async with db.write() as session:
            await service.book(session, SECRET, NOW, request, cache=cache)
        return True
    except SlotTaken:
        return False


async def answers(db, cache: AvailabilityCache | None) -> dict:
    found = {}
    for services in (["pass"], ["long"], ["pass", "long"]):
        for first, last in ((None, None), (TUESDAY, TUESDAY), (TUESDAY + timedelta(1), None)):
            result = await service.availability(db, NOW, "amt", services, first, last, cache)
            found[(tuple(services), first, last)] = [(d.date, d.texts) for d in result.days]
    return found


async def test_bookings_committed_here_keep_the_state_exact_without_reading_it_again(db):
    await a_location(db, places=2, hours="08:00-12:00", services={"pass": 10, "long": 20})
    cache = AvailabilityCache()
    before = await answers(db, cache)
    state = cache.states["amt"]
    starts = starts_on(TUESDAY, range(8, 11)) + starts_on(TUESDAY + timedelta(1), range(9, 11))
    outcomes = await asyncio.gather(
        *(book(db, cache, n, start, ["long"] if n % 3 else ["pass"]) for n, start in
          enumerate(starts * 2))
    )  # fmt: skip
    assert any(outcomes) and not all(outcomes)  # some starts were taken by overlapping bookings
    assert cache.states["amt"] is state  # brought forward in place, never read again
    version = "SELECT version FROM availability_version WHERE location_id = $1"
    assert state.version == await db.peek(version, "amt")
    fresh = await answers(db, None)
    assert await answers(db, cache) == fresh
    assert fresh != before
    assert cache.states["amt"] is state


async def test_a_booking_not_told_to_this_instance_makes_it_read_the_state_again(db):
    await a_location(db, places=1, hours="08:00-12:00", services={"pass": 10, "long": 20})
    cache = AvailabilityCache()
    await answers(db, cache)
    state = cache.states["amt"]
    assert await book(db, None, 1, starts_on(TUESDAY, range(9, 10))[0])  # another instance
    assert await answers(db, cache) == await answers(db, None)
    assert cache.states["amt"] is not state
