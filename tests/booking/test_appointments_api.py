"""Booking through the API, as a citizen's browser or an integrator would."""

from __future__ import annotations

from tests.builders import a_location

MONDAY_0900 = "2026-11-23T09:00:00+01:00"
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


async def test_locations_list_what_is_configured(db, client):
    await a_location(db)
    response = await client.get("/api/v1/locations")
    assert response.status_code == 200
    [location] = response.json()
    assert location["id"] == "amt"
    assert location["services"] == ["pass"]
    assert location["timezone"] == "Europe/Berlin"


async def test_booked_time_disappears_from_availability(db, client):
    await a_location(db, places=1)
    before = (
        await client.get("/api/v1/availability", params={"location": "amt", "service": "pass"})
    ).json()
    tuesday = next(d for d in before["days"] if d["date"] == "2026-11-24")
    assert TUESDAY_0900 in tuesday["slots"]

    created = await client.post("/api/v1/appointments", json=a_booking())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "confirmed"
    assert body["start"] == TUESDAY_0900
    assert body["end"] == "2026-11-24T09:10:00+01:00"
    assert len(body["code"]) == 6
    assert len(body["token"]) >= 22

    after = (
        await client.get("/api/v1/availability", params={"location": "amt", "service": "pass"})
    ).json()
    tuesday = next(d for d in after["days"] if d["date"] == "2026-11-24")
    assert TUESDAY_0900 not in tuesday["slots"]


async def test_second_booking_of_the_last_place_is_slot_taken(db, client):
    await a_location(db, places=1)
    first = await client.post("/api/v1/appointments", json=a_booking())
    assert first.status_code == 201
    second = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert second.status_code == 409
    assert second.json()["reason"] == "slot_taken"


async def test_cancel_frees_the_time_and_reads_cancelled(db, client):
    await a_location(db, places=1)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    assert (await client.delete(f"/api/v1/appointments/{token}")).status_code == 204
    read = await client.get(f"/api/v1/appointments/{token}")
    assert read.status_code == 200
    assert read.json()["status"] == "cancelled"
    again = await client.post("/api/v1/appointments", json=a_booking(email="max@example.org"))
    assert again.status_code == 201


async def test_unknown_token_is_404(db, client):
    await a_location(db)
    assert (await client.get("/api/v1/appointments/nonsense")).status_code == 404
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert (await client.get(f"/api/v1/appointments/{forged}")).status_code == 404


async def test_logs_never_carry_the_token(db, client, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    await a_location(db)
    token = (await client.post("/api/v1/appointments", json=a_booking())).json()["token"]
    await client.get(f"/api/v1/appointments/{token}")
    await client.get(f"/api/v1/appointments/{token}/calendar.ics")
    await client.delete(f"/api/v1/appointments/{token}")
    server_side = "\n".join(
        r.getMessage()
        for r in caplog.records
        if not r.name.startswith("httpx")  # the test's client
    )
    assert "GET /api/v1/appointments/… 200" in server_side
    assert token not in server_side
