"""What a citizen notices when booking goes wrong, and the rules around an appointment's life."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from aufruf.booking.model import Appointment, CapacityUsage, Contact
from aufruf.notifications.model import OutboxMessage
from tests.builders import a_location

TUESDAY_0900 = "2026-11-24T09:00:00+01:00"


def a_booking(start: str = TUESDAY_0900, **fields) -> dict:
    return {
        "location": "amt",
        "services": ["pass"],
        "start": start,
        "name": "Erika Mustermann",
        "email": "erika@example.org",
        **fields,
    }


async def _count(db, table) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).select_from(table))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"location": "nowhere"}, "location"),
        ({"services": ["pass", "unknown"]}, "services[1]"),
        ({"services": ["pass"] * 6}, "services"),
        ({"start": "2026-11-24T09:05:00+01:00"}, "start"),
        ({"start": "2026-11-20T09:00:00+01:00"}, "start"),
        ({"start": "2026-11-23T07:00:00+01:00"}, "start"),
        ({"start": "2026-12-09T09:00:00+01:00"}, "start"),
        ({"start": "2026-11-24T11:55:00+01:00"}, "start"),
        ({"start": "2026-11-28T09:00:00+01:00"}, "start"),
        ({"start": "2026-11-24T09:00:00"}, "start"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"name": "x" * 201}, "name"),
        ({"name": "   "}, "name"),
        ({"phone": "call me maybe"}, "phone"),
        ({"language": "xx"}, "language"),
    ],
    ids=[
        "unknown-location",
        "unknown-service",
        "too-many-of-one-service",
        "off-grid",
        "in-the-past",
        "inside-lead-time",
        "beyond-horizon",
        "does-not-fit-before-closing",
        "closed-on-saturday",
        "no-offset",
        "malformed-email",
        "email-without-domain",
        "over-long-name",
        "blank-name",
        "bad-phone",
        "unknown-language",
    ],
)
async def test_bad_input_is_400_naming_the_field_and_writes_nothing(db, client, change, field):
    await a_location(db, max_quantity=5, hours="08:00-12:00")
    response = await client.post("/api/v1/appointments", json=a_booking(**change))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["detail"]
    assert field in [e["key"] for e in body["extra"]]
    assert await _count(db, Appointment) == 0
    assert await _count(db, CapacityUsage) == 0
    assert await _count(db, OutboxMessage) == 0


async def test_two_passports_take_twice_the_time(db, client):
    await a_location(db, services={"pass": 15}, grid=10)
    response = await client.post("/api/v1/appointments", json=a_booking(services=["pass", "pass"]))
    assert response.status_code == 201
    assert response.json()["end"] == "2026-11-24T09:30:00+01:00"
    assert response.json()["services"] == ["pass", "pass"]


async def test_availability_for_two_counts_the_service_twice(db, client):
    await a_location(db, services={"pass": 20}, hours="08:00-09:00")
    one = await client.get(
        "/api/v1/availability",
        params={"location": "amt", "service": "pass", "from": "2026-11-24", "to": "2026-11-24"},
    )
    two = await client.get(
        "/api/v1/availability",
        params=[
            ("location", "amt"),
            ("service", "pass"),
            ("service", "pass"),
            ("from", "2026-11-24"),
            ("to", "2026-11-24"),
        ],
    )
    assert len(one.json()["days"][0]["slots"]) == 5  # 08:00 … 08:40 for 20 minutes
    assert two.json()["days"][0]["slots"] == [
        "2026-11-24T08:00:00+01:00",
        "2026-11-24T08:10:00+01:00",
        "2026-11-24T08:20:00+01:00",
    ]


async def test_days_without_free_times_are_listed_empty(db, client):
    await a_location(db, closures=[(date(2026, 11, 25), date(2026, 11, 25))])
    days = (
        await client.get("/api/v1/availability", params={"location": "amt", "service": "pass"})
    ).json()["days"]
    by_date = {d["date"]: d["slots"] for d in days}
    assert by_date["2026-11-25"] == []  # closure
    assert by_date["2026-11-28"] == []  # Saturday
    assert by_date["2026-11-26"]
    assert min(by_date) == "2026-11-23" and max(by_date) == "2026-12-07"


async def test_public_holidays_of_the_state_are_closed(db, client, clock):
    await a_location(db, holiday_state="NW")
    clock.set(datetime(2026, 12, 21, 7, 0, tzinfo=UTC))
    days = (
        await client.get(
            "/api/v1/availability",
            params={"location": "amt", "service": "pass", "from": "2026-12-24", "to": "2026-12-25"},
        )
    ).json()["days"]
    by_date = {d["date"]: d["slots"] for d in days}
    assert by_date["2026-12-24"]  # a Thursday, and no public holiday in NRW
    assert by_date["2026-12-25"] == []  # Christmas Day, a Friday


async def test_unknown_location_in_availability_is_400_naming_it(db, client):
    await a_location(db)
    response = await client.get(
        "/api/v1/availability", params={"location": "nowhere", "service": "pass"}
    )
    assert response.status_code == 400
    assert [e["key"] for e in response.json()["extra"]] == ["location"]


async def test_reschedule_keeps_the_old_time_when_the_new_one_is_taken(db, client):
    await a_location(db, places=1)
    mine = (await client.post("/api/v1/appointments", json=a_booking())).json()
    other = await client.post(
        "/api/v1/appointments", json=a_booking("2026-11-24T10:00:00+01:00", email="max@example.org")
    )
    assert other.status_code == 201
    moved = await client.post(
        f"/api/v1/appointments/{mine['token']}/reschedule",
        json={"start": "2026-11-24T10:00:00+01:00"},
    )
    assert moved.status_code == 409
    assert moved.json()["reason"] == "slot_taken"
    still = (await client.get(f"/api/v1/appointments/{mine['token']}")).json()
    assert still["start"] == TUESDAY_0900
    # and the old time is still held: nobody else can take it
    taken = await client.post("/api/v1/appointments", json=a_booking(email="third@example.org"))
    assert taken.json()["reason"] == "slot_taken"


async def test_reschedule_moves_and_frees_the_old_time(db, client):
    await a_location(db, places=1)
    mine = (await client.post("/api/v1/appointments", json=a_booking())).json()
    moved = await client.post(
        f"/api/v1/appointments/{mine['token']}/reschedule",
        json={"start": "2026-11-24T11:00:00+01:00"},
    )
    assert moved.status_code == 200
    assert moved.json()["start"] == "2026-11-24T11:00:00+01:00"
    assert moved.json()["code"] == mine["code"]
    freed = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert freed.status_code == 201


async def test_reschedule_to_an_overlapping_time_of_its_own(db, client):
    """Moving by one slot reuses the places the appointment itself holds."""
    await a_location(db, places=1, services={"pass": 30})
    mine = (await client.post("/api/v1/appointments", json=a_booking())).json()
    moved = await client.post(
        f"/api/v1/appointments/{mine['token']}/reschedule",
        json={"start": "2026-11-24T09:10:00+01:00"},
    )
    assert moved.status_code == 200, moved.text


async def test_an_email_address_holds_at_most_three_upcoming_appointments(db, client):
    await a_location(db, places=5)
    for hour in (8, 9, 10):
        ok = await client.post(
            "/api/v1/appointments", json=a_booking(f"2026-11-24T{hour:02d}:00:00+01:00")
        )
        assert ok.status_code == 201
    fourth = await client.post(
        "/api/v1/appointments",
        json=a_booking("2026-11-24T11:00:00+01:00", email="ERIKA@example.org"),
    )
    assert fourth.status_code == 409
    assert fourth.json()["reason"] == "limit_reached"


async def test_concurrent_bookings_from_one_address_respect_the_limit(db, client):
    import asyncio

    await a_location(db, places=5)
    starts = [f"2026-11-24T{h:02d}:{m:02d}:00+01:00" for h in (8, 9, 10) for m in (0, 20, 40)]
    answers = await asyncio.gather(
        *(client.post("/api/v1/appointments", json=a_booking(s)) for s in starts)
    )
    assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 6


async def test_cancelled_appointment_cannot_be_moved_and_cancel_is_idempotent(db, client):
    await a_location(db)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    assert (await client.delete(f"/api/v1/appointments/{token}")).status_code == 204
    assert (await client.delete(f"/api/v1/appointments/{token}")).status_code == 204
    moved = await client.post(
        f"/api/v1/appointments/{token}/reschedule", json={"start": TUESDAY_0900}
    )
    assert moved.status_code == 409
    assert moved.json()["reason"] == "cancelled"


async def test_hold_back_keeps_a_cancelled_time_blocked_until_the_worker_frees_it(
    db, client, clock
):
    from aufruf.worker import Worker

    await a_location(db, places=1, holdback_minutes=15)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    await client.delete(f"/api/v1/appointments/{token}")
    blocked = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert blocked.json()["reason"] == "slot_taken"
    clock.advance(minutes=16)
    await Worker(db, clock).tick()
    freed = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert freed.status_code == 201


async def test_double_opt_in_holds_the_time_until_confirmed(db, client, clock):
    await a_location(db, places=1, double_opt_in=True)
    created = (await client.post("/api/v1/appointments", json=a_booking())).json()
    assert created["status"] == "pending"
    confirmed = await client.post(f"/api/v1/appointments/{created['token']}/confirm")
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed"


async def test_unconfirmed_booking_is_released_after_the_hold(db, client, clock):
    from aufruf.worker import Worker

    await a_location(db, places=1, double_opt_in=True)
    created = (await client.post("/api/v1/appointments", json=a_booking())).json()
    clock.advance(minutes=31)
    await Worker(db, clock).tick()
    assert (await client.get(f"/api/v1/appointments/{created['token']}")).json()[
        "status"
    ] == "expired"
    late = await client.post(f"/api/v1/appointments/{created['token']}/confirm")
    assert late.status_code == 409
    again = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert again.status_code == 201


async def test_contact_data_is_deleted_after_the_retention_period(db, client, clock):
    from aufruf.worker import purge

    await a_location(db)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    clock.set(datetime(2026, 11, 24, 8, 9, tzinfo=UTC) + timedelta(days=7))
    assert await purge(db, clock.now()) == 0
    clock.advance(minutes=1)
    assert await purge(db, clock.now()) == 1
    assert await _count(db, Contact) == 0
    # the appointment itself remains, without personal data, and its link still answers
    assert (await client.get(f"/api/v1/appointments/{token}")).status_code == 200


async def test_calendar_file_has_local_times_and_the_address(db, client):
    await a_location(db)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    response = await client.get(f"/api/v1/appointments/{token}/calendar.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["METHOD"]) == "PUBLISH"
    [event] = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert start.isoformat() == "2026-11-24T09:00:00+01:00"
    assert str(start.tzinfo) == "Europe/Berlin"
    assert "Rathausstraße 11" in str(event["LOCATION"])
    assert calendar.walk("VTIMEZONE")


async def test_booking_queues_a_confirmation_without_token_or_text(db, client):
    await a_location(db)
    await client.post("/api/v1/appointments", json=a_booking())
    async with db.read() as session:
        [message] = (await session.scalars(select(OutboxMessage))).all()
    assert message.kind == "booking_confirmed"
    assert message.details == {}
