"""Availability is cached per instance, and a change on any instance is seen at once."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
from sqlalchemy import func, select

from aufruf.app import create_app
from aufruf.booking.model import Appointment, CapacityUsage
from aufruf.booking.service import VersionReader, bump_versions
from aufruf.db import Database
from aufruf.offices.model import Closure
from tests.builders import a_location
from tests.conftest import running

TUESDAY = date(2026, 11, 24)
TUESDAY_0900 = "2026-11-24T09:00:00+01:00"
QUERY = {"location": "amt", "service": "pass", "from": "2026-11-24", "to": "2026-11-24"}


async def test_a_booking_on_one_instance_is_seen_by_the_cached_answer_of_another(
    db, settings, clock
):
    await a_location(db, places=1)
    other_db = Database(db.url)
    first, second = (
        create_app(settings, db=db, clock=clock),
        create_app(settings, db=other_db, clock=clock),
    )
    try:
        async with (
            running(first),
            running(second),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
        ):
            before = (await a.get("/api/v1/availability", params=QUERY)).json()["days"][0]["slots"]
            assert TUESDAY_0900 in before  # now cached on instance a
            booked = await b.post(
                "/api/v1/appointments",
                json={
                    "location": "amt",
                    "services": ["pass"],
                    "start": TUESDAY_0900,
                    "name": "E",
                    "email": "e@example.org",
                },
            )
            assert booked.status_code == 201
            after = (await a.get("/api/v1/availability", params=QUERY)).json()["days"][0]["slots"]
            assert TUESDAY_0900 not in after
            cancelled = await b.delete(f"/api/v1/appointments/{booked.json()['token']}")
            assert cancelled.status_code == 204
            again = (await a.get("/api/v1/availability", params=QUERY)).json()["days"][0]["slots"]
            assert TUESDAY_0900 in again
    finally:
        await other_db.dispose()


class GatedDatabase:
    """Answers version reads when the test lets it, and counts them."""

    def __init__(self) -> None:
        self.version = 1
        self.reads = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def peek(self, sql: str, *params: object) -> int:
        self.reads += 1
        seen = self.version
        self.started.set()
        await self.gate.wait()
        self.gate.clear()
        return seen

    async def let_one_read_finish(self) -> None:
        self.started.clear()
        self.gate.set()


async def test_a_request_never_uses_a_version_read_that_began_before_it_arrived():
    db = GatedDatabase()
    reader = VersionReader(db, "amt")  # type: ignore[arg-type]
    early = asyncio.create_task(reader.read())
    await db.started.wait()  # the first read is under way
    db.version = 2  # and a change commits meanwhile
    late = [asyncio.create_task(reader.read()) for _ in range(5)]
    await db.let_one_read_finish()
    assert await early == 1
    await db.started.wait()  # the late requests' own read
    await db.let_one_read_finish()
    assert [await t for t in late] == [2] * 5
    assert db.reads == 2  # the five late requests shared one read


def a_booking(start: str, email: str) -> dict:
    return {"location": "amt", "services": ["pass"], "start": start, "name": "E", "email": email}


async def test_a_booking_follows_rules_changed_elsewhere_after_this_instance_cached_them(
    db, client
):
    await a_location(db, places=1)
    first = await client.post("/api/v1/appointments", json=a_booking(TUESDAY_0900, "a@x.org"))
    assert first.status_code == 201  # the instance has the rules cached now
    async with db.write() as session:  # another instance closes Tuesday (an import)
        session.add(Closure(location_id="amt", first_day=TUESDAY, last_day=TUESDAY))
        await bump_versions(session, ["amt"], rules=True)

    refused = await client.post(
        "/api/v1/appointments", json=a_booking("2026-11-24T09:30:00+01:00", "b@x.org")
    )

    assert refused.status_code == 400, refused.text
    assert refused.json()["extra"][0]["key"] == "start"
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Appointment)) == 1
        claimed = await session.scalar(select(func.sum(CapacityUsage.used)))
    assert claimed == 1  # only the first booking's one slot
