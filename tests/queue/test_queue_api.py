"""The queue over HTTP, as kiosks, desks and phones use it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from aufruf.auth.service import create_token
from aufruf.booking.service import BookingRequest, book
from aufruf.queue.model import QueueEvent
from tests.builders import a_location
from tests.conftest import SECRET


async def a_token(db, clock, role, **binding) -> dict[str, str]:
    async with db.write() as session:
        new = await create_token(session, clock.now(), role=role, **binding)
    return {"Authorization": f"Bearer {new.token}"}


@pytest.fixture
async def office(db, clock):
    """A location open now (Monday 09:00 local), with a kiosk and three counters."""
    from aufruf.offices.model import Kiosk

    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    await a_location(db, services={"pass": 10, "other": 10}, counters=3)
    async with db.write() as session:
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
    return {
        "kiosk": await a_token(db, clock, "kiosk", location="amt"),
        "clerk": await a_token(db, clock, "clerk", location="amt", counter="amt-1"),
        "display": await a_token(db, clock, "display", location="amt"),
        "admin": await a_token(db, clock, "admin"),
    }


async def test_kiosk_draws_a_ticket_with_its_phone_link(client, office):
    response = await client.post(
        "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
    )
    assert response.status_code == 201, response.text
    ticket = response.json()
    assert ticket["number"] == "A001"
    assert ticket["status"] == "waiting"
    assert ticket["people_ahead"] == 0
    assert ticket["status_url"].endswith("/t/" + ticket["token"])
    phone = await client.get(f"/api/v1/tickets/{ticket['token']}")
    assert phone.json()["number"] == "A001"
    assert phone.json()["people_ahead"] == 0


async def test_kiosks_drawing_at_once_get_their_own_numbers_and_places(client, office, db):
    """On PostgreSQL each draw is one statement that commits as it ends; whatever order the
    answers come back in, each has its own number and is told its place in number order."""
    draw = {"json": {"service": "pass"}, "headers": office["kiosk"]}
    first = await client.post("/api/v1/locations/amt/tickets", **draw)
    assert first.json()["people_ahead"] == 0  # the instance now keeps the line
    answers = await asyncio.gather(
        *(client.post("/api/v1/locations/amt/tickets", **draw) for _ in range(40))
    )
    assert {a.status_code for a in answers} == {201}
    told = sorted((a.json()["number"], a.json()["people_ahead"]) for a in answers)
    assert told == [(f"A{n:03d}", n - 1) for n in range(2, 42)]
    for answer in answers[:5]:  # the phone view reads the line afresh and agrees
        phone = (await client.get(f"/api/v1/tickets/{answer.json()['token']}")).json()
        assert phone["people_ahead"] == answer.json()["people_ahead"]
    async with db.read() as session:
        seqs = list(await session.scalars(select(QueueEvent.seq).order_by(QueueEvent.seq)))
    assert seqs == list(range(1, 42))


async def test_queue_lists_never_show_tokens(client, office):
    await client.post(
        "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
    )
    listed = (await client.get("/api/v1/locations/amt/queue", headers=office["clerk"])).json()
    assert [t["number"] for t in listed] == ["A001"]
    assert "token" not in listed[0] and "status_url" not in listed[0]


async def test_the_clerk_calls_and_the_phone_sees_the_counter(client, office):
    ticket = (
        await client.post(
            "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
        )
    ).json()
    assert (
        await client.post("/api/v1/counters/amt-1/open", headers=office["clerk"])
    ).status_code == 200
    called = await client.post("/api/v1/counters/amt-1/call-next", headers=office["clerk"])
    assert called.status_code == 200
    assert called.json()["number"] == "A001"
    phone = (await client.get(f"/api/v1/tickets/{ticket['token']}")).json()
    assert (phone["status"], phone["counter"]) == ("called", "Platz 1")
    done = await client.post("/api/v1/counters/amt-1/done", headers=office["clerk"])
    assert done.json()["status"] == "done"
    nobody = await client.post("/api/v1/counters/amt-1/call-next", headers=office["clerk"])
    assert nobody.status_code == 204


async def test_the_counters_list_shows_each_counter_with_its_own_current_ticket(
    client, office, db, clock
):
    clerk_2 = await a_token(db, clock, "clerk", location="amt", counter="amt-2")
    drawn = [
        (
            await client.post(
                "/api/v1/locations/amt/tickets", json={"service": s}, headers=office["kiosk"]
            )
        ).json()
        for s in ("pass", "other", "pass")
    ]
    for counter, headers in (("amt-1", office["clerk"]), ("amt-2", clerk_2)):
        assert (await client.post(f"/api/v1/counters/{counter}/open", headers=headers)).is_success
        assert (
            await client.post(f"/api/v1/counters/{counter}/call-next", headers=headers)
        ).is_success
    counters = (await client.get("/api/v1/locations/amt/counters", headers=office["clerk"])).json()
    current = {c["id"]: c["current"] and c["current"]["number"] for c in counters}
    assert current == {"amt-1": drawn[0]["number"], "amt-2": drawn[1]["number"], "amt-3": None}
    by_id = {c["id"]: c for c in counters}
    assert by_id["amt-2"]["current"]["services"] == ["other"]
    assert by_id["amt-2"]["current"]["counter"] == "Platz 2"
    assert [c["status"] for c in counters] == ["open", "open", "closed"]


async def test_events_come_in_seq_order_without_tokens(client, office):
    ticket = (
        await client.post(
            "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
        )
    ).json()
    await client.post("/api/v1/counters/amt-1/open", headers=office["clerk"])
    await client.post("/api/v1/counters/amt-1/call-next", headers=office["clerk"])
    events = (
        await client.get(
            "/api/v1/locations/amt/events", params={"after": 0}, headers=office["clerk"]
        )
    ).json()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["type"] for e in events] == ["issued", "counter_open", "called"]
    assert events[2]["counter"] == "Platz 1"
    assert ticket["token"] not in str(events)
    later = (
        await client.get(
            "/api/v1/locations/amt/events", params={"after": 2}, headers=office["clerk"]
        )
    ).json()
    assert [e["seq"] for e in later] == [3]


async def test_check_in_by_code_in_any_case(client, office, db, clock):
    async with db.write() as session:
        booked = await book(
            session,
            SECRET,
            clock.now() - timedelta(days=2),
            BookingRequest(
                location="amt",
                services=["pass"],
                start=datetime(2026, 11, 23, 8, 10, tzinfo=UTC),
                name="E",
                email="e@example.org",
            ),
        )
    code = booked.appointment.code
    typed = f"{code[:3].lower()} {code[3:]}"
    response = await client.post(
        "/api/v1/locations/amt/checkins", json={"code": typed}, headers=office["kiosk"]
    )
    assert response.status_code == 201, response.text
    assert response.json()["number"] == "T001"
    assert response.json()["appointment"]["start"] == "2026-11-23T09:10:00+01:00"
    again = await client.post(
        "/api/v1/locations/amt/checkins", json={"code": code}, headers=office["kiosk"]
    )
    assert (again.status_code, again.json()["reason"]) == (409, "already_checked_in")
    unknown = await client.post(
        "/api/v1/locations/amt/checkins", json={"code": "ZZZZZZ"}, headers=office["kiosk"]
    )
    assert unknown.status_code == 404


async def test_check_in_reasons(client, office, db, clock):
    async def booked_at(start, location="amt"):
        async with db.write() as session:
            return await book(
                session,
                SECRET,
                clock.now() - timedelta(days=2),
                BookingRequest(
                    location=location,
                    services=["pass"],
                    start=start,
                    name="E",
                    email=f"{start.minute}{start.day}@example.org",
                ),
            )

    tomorrow = await booked_at(datetime(2026, 11, 24, 8, 0, tzinfo=UTC))
    late = await booked_at(datetime(2026, 11, 23, 7, 0, tzinfo=UTC) + timedelta(minutes=30))
    far = await booked_at(datetime(2026, 11, 23, 10, 30, tzinfo=UTC))
    cancelled = await booked_at(datetime(2026, 11, 23, 8, 20, tzinfo=UTC))
    async with db.write() as session:
        from aufruf.booking.model import Appointment
        from aufruf.booking.service import cancel

        await cancel(session, await session.get(Appointment, cancelled.appointment.id), clock.now())
    for appointment, reason in [
        (tomorrow, "wrong_day"),
        (late, "too_late"),
        (far, "too_early"),
        (cancelled, "cancelled"),
    ]:
        response = await client.post(
            "/api/v1/locations/amt/checkins",
            json={"code": appointment.appointment.code},
            headers=office["kiosk"],
        )
        assert (response.status_code, response.json().get("reason")) == (409, reason)


async def test_no_credentials_401_wrong_role_or_place_403(client, office, db, clock):
    assert (
        await client.post("/api/v1/locations/amt/tickets", json={"service": "pass"})
    ).status_code == 401
    assert (await client.get("/api/v1/locations/amt/queue")).status_code == 401
    assert (await client.post("/api/v1/counters/amt-1/call-next")).status_code == 401
    assert (
        await client.get("/api/v1/locations/amt/queue", headers=office["display"])
    ).status_code == 403
    assert (
        await client.post("/api/v1/counters/amt-1/call-next", headers=office["kiosk"])
    ).status_code == 403
    # a clerk token bound to counter 1 cannot act for counter 2
    assert (
        await client.post("/api/v1/counters/amt-2/open", headers=office["clerk"])
    ).status_code == 403
    await a_location(db, "elsewhere")
    other = await a_token(db, clock, "kiosk", location="amt")
    assert (
        await client.post(
            "/api/v1/locations/elsewhere/tickets", json={"service": "pass"}, headers=other
        )
    ).status_code == 403


async def test_citizen_gives_up_the_place(client, office):
    ticket = (
        await client.post(
            "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
        )
    ).json()
    assert (await client.delete(f"/api/v1/tickets/{ticket['token']}")).status_code == 204
    assert (await client.get(f"/api/v1/tickets/{ticket['token']}")).json()["status"] == "cancelled"
    assert (await client.get("/api/v1/locations/amt/queue", headers=office["admin"])).json() == []


async def test_staff_priority_moves_a_ticket_ahead(client, office):
    first = (
        await client.post(
            "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
        )
    ).json()
    second = (
        await client.post(
            "/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=office["kiosk"]
        )
    ).json()
    raised = await client.post(
        f"/api/v1/tickets/{second['id']}/priority", json={"level": 1}, headers=office["admin"]
    )
    assert raised.status_code == 200
    listed = (await client.get("/api/v1/locations/amt/queue", headers=office["admin"])).json()
    assert [t["number"] for t in listed] == ["A002", "A001"]
    assert (await client.get(f"/api/v1/tickets/{first['token']}")).json()["people_ahead"] == 1


async def test_staff_book_for_a_citizen_on_the_phone_without_an_email(client, office, db, clock):
    clerk = await a_token(db, clock, "clerk", location="amt")
    body = {
        "location": "amt",
        "services": ["pass"],
        "start": "2026-11-24T09:00:00+01:00",
        "name": "Herr Ohne Mail",
    }
    public = await client.post("/api/v1/appointments", json=body)
    assert public.status_code == 400
    assert [e["key"] for e in public.json()["extra"]] == ["email"]
    staff = await client.post("/api/v1/appointments", json=body, headers=clerk)
    assert staff.status_code == 201, staff.text
    assert staff.json()["status"] == "confirmed"
    kiosk = await client.post("/api/v1/appointments", json=body, headers=office["kiosk"])
    assert kiosk.status_code == 403


async def test_a_staff_booking_at_a_double_opt_in_location_is_confirmed(client, db, clock):
    await a_location(db, "optin", double_opt_in=True)
    clerk = await a_token(db, clock, "clerk", location="optin")
    body = {
        "location": "optin",
        "services": ["pass"],
        "start": "2026-11-24T09:00:00+01:00",
        "name": "Frau Telefon",
    }
    staff = await client.post("/api/v1/appointments", json=body, headers=clerk)
    assert staff.json()["status"] == "confirmed"
    public = await client.post(
        "/api/v1/appointments",
        json=body | {"email": "e@example.org", "start": "2026-11-24T10:00:00+01:00"},
    )
    assert public.json()["status"] == "pending"


async def test_a_call_reads_the_counter_its_state_and_rules_in_one_statement(client, office, db):
    """What the clerk waits for: before the call itself, one read of the counter, its state
    (locked) and the location's rules, where there were two."""
    kiosk, clerk = office["kiosk"], office["clerk"]
    await client.post("/api/v1/locations/amt/tickets", json={"service": "pass"}, headers=kiosk)
    await client.post("/api/v1/counters/amt-1/open", headers=clerk)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        called = await client.post("/api/v1/counters/amt-1/call-next", headers=clerk)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert called.json()["number"] == "A001"
    reads = [s for s in statements if "FROM counter" in s and "counter_state" in s]
    assert len(reads) == 1, statements
    assert "location.queue" in reads[0]
    assert db.is_sqlite or "FOR UPDATE OF counter_state" in reads[0]
    before = statements[: statements.index(reads[0])]
    assert not [s for s in before if "FROM counter" in s], statements
    after = statements[statements.index(reads[0]) + 1 :]
    assert not [s for s in after if s.startswith("SELECT") and "counter_state" in s], statements
