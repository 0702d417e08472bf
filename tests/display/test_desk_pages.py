"""The desk's pages (/desk, /desk/{C}) and its read of the day's appointments."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from aufruf.auth import passwords
from aufruf.auth.service import create_token, create_user
from aufruf.booking.service import BookingRequest, book
from aufruf.offices.model import Kiosk
from tests.builders import a_location
from tests.conftest import SECRET

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture
async def office(db, clock) -> None:
    """Locations "amt" (three counters, a kiosk) and "other"; clerk anna works at "amt"."""
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=3)
    await a_location(db, "other", counters=1)
    async with db.write() as session:
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
        await create_user(session, clock.now(), "anna", PASSWORD, "clerk", ["amt"])


def hidden_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name} in the page"
    return found.group(1)


async def sign_in(client, username: str = "anna") -> str:
    """Sign in through the form; returns where the browser is sent."""
    page = await client.get("/login")
    answer = await client.post(
        "/login",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "username": username,
            "password": PASSWORD,
        },
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def desk_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="desk-data">(.*?)</script>', html, re.S)
    assert found, "no desk data in the page"
    return json.loads(found.group(1))


async def test_without_a_session_the_desk_sends_to_the_login(client, office):
    answer = await client.get("/desk")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fdesk"


async def test_after_sign_in_the_clerk_lands_on_the_desk_and_sees_the_counters(client, office):
    assert await sign_in(client) == "/desk"
    page = await client.get("/desk")

    assert page.status_code == 200
    assert "<h1>Wählen Sie Ihren Schalter</h1>" in page.text
    assert page.text.count('data-sit="amt-') == 3
    assert "other-1" not in page.text  # not her location
    assert "Geschlossen" in page.text
    assert "Der Arbeitsplatz braucht JavaScript" in page.text
    assert '<meta name="csrf-token"' in page.text


async def test_the_counter_list_shows_who_sits_where(client, office):
    await sign_in(client)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', (await client.get("/desk")).text)
    sat = await client.post("/api/v1/counters/amt-2/sit", headers={"X-CSRF-Token": csrf[1]})
    assert sat.status_code == 200, sat.text

    page = (await client.get("/desk", params={"lang": "en"})).text

    assert "<h1>Choose your counter</h1>" in page
    assert "You are seated at Platz 2." in page
    assert 'href="/desk/amt-2"' in page
    assert 'data-leave="amt-2"' in page
    assert page.count('data-sit="amt-') == 2


async def test_the_desk_page_carries_what_its_script_needs(client, office):
    await sign_in(client)
    page = await client.get("/desk/amt-1", params={"lang": "en"})

    assert page.status_code == 200
    assert 'src="/static/desk.js"' in page.text
    assert 'aria-keyshortcuts="N"' in page.text
    assert "<noscript>" in page.text
    data = desk_data(page.text)
    assert (data["page"], data["counter"], data["location"]) == ("desk", "amt-1", "amt")
    assert data["me"] == "anna"
    assert data["services"] == {"pass": "pass", "other": "other"}
    assert data["strings"]["reasons"]["not_seated"] == "Take a seat at this counter first."


async def test_a_counter_elsewhere_is_not_allowed_and_an_unknown_one_not_found(client, office):
    await sign_in(client)

    elsewhere = await client.get("/desk/other-1")
    unknown = await client.get("/desk/nowhere-9")

    assert elsewhere.status_code == 403
    assert "<h1>" in elsewhere.text
    assert unknown.status_code == 404
    assert "nowhere-9" in unknown.text


async def test_the_script_and_its_stylesheet_are_served(client, office):
    script = await client.get("/static/desk.js")
    style = await client.get("/static/desk.css")

    assert script.status_code == 200
    assert "X-CSRF-Token" in script.text
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


# --- GET /api/v1/locations/{L}/appointments ---------------------------------------------------


async def booked(db, clock, start: datetime, services: list[str]):
    async with db.write() as session:
        return await book(
            session,
            SECRET,
            clock.now() - timedelta(days=2),
            BookingRequest(
                location="amt",
                services=services,
                start=start,
                name="Erika Mustermann",
                email=f"erika{start.hour}{start.minute}@example.org",
            ),
        )


async def test_the_days_appointments_have_codes_times_and_states_but_no_names(
    client, office, db, clock
):
    late = await booked(db, clock, datetime(2026, 11, 23, 10, 0, tzinfo=UTC), ["pass"])
    soon = await booked(db, clock, datetime(2026, 11, 23, 8, 10, tzinfo=UTC), ["pass", "pass"])
    await booked(db, clock, datetime(2026, 11, 24, 8, 0, tzinfo=UTC), ["pass"])  # tomorrow
    async with db.write() as session:
        kiosk = (await create_token(session, clock.now(), role="kiosk", location="amt")).token
        clerk = (await create_token(session, clock.now(), role="clerk", location="amt")).token
    checked_in = await client.post(
        "/api/v1/locations/amt/checkins",
        json={"code": soon.appointment.code},
        headers={"Authorization": f"Bearer {kiosk}"},
    )
    assert checked_in.status_code == 201, checked_in.text

    answer = await client.get(
        "/api/v1/locations/amt/appointments", headers={"Authorization": f"Bearer {clerk}"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == [
        {
            "code": soon.appointment.code,
            "start": "2026-11-23T09:10:00+01:00",
            "end": "2026-11-23T09:30:00+01:00",
            "services": ["pass", "pass"],
            "status": "checked_in",
            "ticket": "T001",
        },
        {
            "code": late.appointment.code,
            "start": "2026-11-23T11:00:00+01:00",
            "end": "2026-11-23T11:10:00+01:00",
            "services": ["pass"],
            "status": "confirmed",
            "ticket": None,
        },
    ]
    assert "Erika" not in answer.text and "example.org" not in answer.text
    tomorrow = await client.get(
        "/api/v1/locations/amt/appointments",
        params={"date": "2026-11-24"},
        headers={"Authorization": f"Bearer {clerk}"},
    )
    assert [a["start"] for a in tomorrow.json()] == ["2026-11-24T09:00:00+01:00"]


async def test_the_days_appointments_are_for_staff_of_the_location(client, office, db, clock):
    async with db.write() as session:
        kiosk = (await create_token(session, clock.now(), role="kiosk", location="amt")).token
        stranger = (await create_token(session, clock.now(), role="clerk", location="other")).token
    path = "/api/v1/locations/amt/appointments"

    nobody = await client.get(path)
    device = await client.get(path, headers={"Authorization": f"Bearer {kiosk}"})
    other = await client.get(path, headers={"Authorization": f"Bearer {stranger}"})

    assert nobody.status_code == 401
    assert device.status_code == 403
    assert other.status_code == 403


async def test_a_bad_date_names_the_field(client, office, db, clock):
    async with db.write() as session:
        clerk = (await create_token(session, clock.now(), role="clerk", location="amt")).token

    answer = await client.get(
        "/api/v1/locations/amt/appointments",
        params={"date": "23.11.2026"},
        headers={"Authorization": f"Bearer {clerk}"},
    )

    assert answer.status_code == 400
    assert answer.json()["extra"][0]["key"] == "date"
