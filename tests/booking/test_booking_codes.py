"""A booking whose first code is taken keeps its claimed places and gets another code."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from aufruf.booking import logic, service
from aufruf.booking.model import AppointmentClaim, CapacityUsage
from aufruf.booking.service import BookingRequest
from aufruf.notifications.model import OutboxMessage
from tests.builders import a_location
from tests.conftest import SECRET

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
TUESDAY_0900 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TUESDAY_1000 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def test_a_taken_code_is_drawn_again_and_the_places_stay_claimed_once(db, monkeypatch):
    await a_location(db, places=2)
    codes = iter(["SAMEAA", "SAMEAA", "OTHERB"])
    monkeypatch.setattr(logic, "new_code", lambda rng=None: next(codes))
    booked = []
    for n, start in enumerate([TUESDAY_0900, TUESDAY_1000]):
        request = BookingRequest("amt", ["pass"], start, f"P {n}", f"p{n}@example.org")
        async with db.write() as session:
            booked.append(await service.book(session, SECRET, NOW, request))
    assert [b.appointment.code for b in booked] == ["SAMEAA", "OTHERB"]
    async with db.read() as session:
        used = dict((await session.execute(select(CapacityUsage.at, CapacityUsage.used))).all())
        claims = await session.scalar(select(func.count()).select_from(AppointmentClaim))
    assert used == {TUESDAY_0900: 1, TUESDAY_1000: 1}
    assert claims == 2


async def test_over_http_a_taken_code_is_drawn_again_and_each_booking_gets_its_message(
    db, client, monkeypatch
):
    """The booking endpoint (on PostgreSQL a transaction that commits as it raises the
    version): a code taken meanwhile is drawn again, and each appointment has one message."""
    await a_location(db, places=2)
    codes = iter(["SAMEAA", "SAMEAA", "OTHERB"])
    monkeypatch.setattr(logic, "new_code", lambda rng=None: next(codes))
    answers = []
    for n, start in enumerate([TUESDAY_0900, TUESDAY_1000]):
        body = {
            "location": "amt",
            "services": ["pass"],
            "start": start.isoformat(),
            "name": f"P {n}",
            "email": f"p{n}@example.org",
        }
        answers.append(await client.post("/api/v1/appointments", json=body))
    assert [a.status_code for a in answers] == [201, 201]
    assert [a.json()["code"] for a in answers] == ["SAMEAA", "OTHERB"]
    async with db.read() as session:
        used = dict((await session.execute(select(CapacityUsage.at, CapacityUsage.used))).all())
        messages = (await session.execute(select(OutboxMessage.kind, OutboxMessage.status))).all()
    assert used == {TUESDAY_0900: 1, TUESDAY_1000: 1}
    assert sorted(messages) == [("booking_confirmed", "queued")] * 2
