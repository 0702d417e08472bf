"""Concurrent bookings with real transactions: capacity is enforced by the database."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from aufruf.booking.model import Appointment, CapacityUsage
from tests.builders import a_location

TUESDAY_0900 = "2026-11-24T09:00:00+01:00"


def a_booking(n: int, start: str = TUESDAY_0900) -> dict:
    return {
        "location": "amt",
        "services": ["pass"],
        "start": start,
        "name": f"Person {n}",
        "email": f"person{n}@example.org",
    }


async def test_hundred_bookings_for_three_places_give_three_appointments(db, client):
    await a_location(db, places=3)
    answers = await asyncio.gather(
        *(client.post("/api/v1/appointments", json=a_booking(n)) for n in range(100))
    )
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: 3, 409: 97}
    assert {a.json()["reason"] for a in answers if a.status_code == 409} == {"slot_taken"}
    async with db.read() as session:
        booked = await session.scalar(select(func.count()).select_from(Appointment))
        worst = await session.scalar(select(func.max(CapacityUsage.used - CapacityUsage.capacity)))
        used = await session.scalar(select(func.max(CapacityUsage.used)))
    assert booked == 3
    assert used == 3
    assert worst <= 0


async def test_concurrent_bookings_of_different_times_all_succeed(db, client):
    await a_location(db, places=1, hours="08:00-12:00")
    starts = [
        f"2026-11-24T{h:02d}:{m:02d}:00+01:00" for h in range(8, 12) for m in range(0, 60, 10)
    ]
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/appointments", json=a_booking(n, start))
            for n, start in enumerate(starts)
        )
    )
    assert [a.status_code for a in answers] == [201] * len(starts)
    after = await client.get(
        "/api/v1/availability",
        params={"location": "amt", "service": "pass", "from": "2026-11-24", "to": "2026-11-24"},
    )
    assert after.json()["days"] == [{"date": "2026-11-24", "slots": []}]


async def test_overlapping_long_bookings_never_exceed_a_slot(db, client):
    """Appointments of different lengths starting at different times compete for shared
    slots; whatever wins, no slot holds more than its places."""
    await a_location(db, places=2, services={"pass": 10, "long": 30}, hours="08:00-10:00")
    requests = []
    for n in range(60):
        start = f"2026-11-24T08:{(n % 6) * 10:02d}:00+01:00"
        body = a_booking(n, start) | {"services": ["long"] if n % 2 else ["pass"]}
        requests.append(client.post("/api/v1/appointments", json=body))
    answers = await asyncio.gather(*requests)
    assert {a.status_code for a in answers} <= {201, 409}
    assert any(a.status_code == 201 for a in answers)
    async with db.read() as session:
        rows = (await session.execute(select(CapacityUsage.at, CapacityUsage.used))).all()
    assert rows and max(used for _, used in rows) <= 2
