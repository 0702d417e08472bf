"""The citizen's own appointment by its secret link: see it, cancel it (after a confirm step),
move it (the old time kept if the new one is taken), confirm it from the e-mail (GET shows a
button, only POST confirms); unknown links get a friendly 404 and tokens never reach the log."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from aufruf.booking.model import Appointment
from tests.builders import a_location

TUESDAY_0900 = "2026-11-24T09:00:00+01:00"


async def booked(client, start: str = TUESDAY_0900, email: str = "erika@example.org") -> str:
    """Books through the site; the appointment's token."""
    response = await client.post(
        "/book",
        data={
            "authority": "amt",
            "service": "pass",
            "location": "amt",
            "start": start,
            "name": "Erika Mustermann",
            "email": email,
            "consent": "1",
        },
    )
    assert response.status_code == 303, response.text
    return re.fullmatch(r"/a/([^/]+)/booked", response.headers["location"]).group(1)


async def free_on_tuesday(client) -> list[str]:
    answer = await client.get(
        "/api/v1/availability",
        params={"location": "amt", "service": "pass", "from": "2026-11-24", "to": "2026-11-24"},
    )
    return answer.json()["days"][0]["slots"]


async def status_of(db) -> tuple[str, str]:
    async with db.read() as session:
        appointment = (await session.scalars(select(Appointment))).one()
    return appointment.status, appointment.start_at.isoformat()


async def test_the_manage_page_shows_the_appointment_and_its_actions(db, client):
    await a_location(db)
    token = await booked(client)

    response = await client.get(f"/a/{token}")
    page = response.text

    assert response.status_code == 200
    assert "<title>Ihr Termin – Terminvergabe</title>" in page
    assert "Dienstag, 24. November 2026" in page
    assert f'href="/a/{token}/cancel"' in page and f'href="/a/{token}/move"' in page
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_cancelling_asks_first_and_then_frees_the_time(db, client):
    await a_location(db)
    token = await booked(client)

    asked = await client.get(f"/a/{token}/cancel")
    assert asked.status_code == 200
    assert "Termin absagen?" in asked.text
    assert (await status_of(db))[0] == "confirmed"
    assert TUESDAY_0900 not in await free_on_tuesday(client)

    done = await client.post(f"/a/{token}/cancel")
    page = (await client.get(done.headers["location"])).text

    assert done.status_code == 303
    assert (await status_of(db))[0] == "cancelled"
    assert "Ihr Termin wurde abgesagt.</p>" in page
    assert f'href="/a/{token}/cancel"' not in page
    assert TUESDAY_0900 in await free_on_tuesday(client)


async def test_moving_picks_a_new_day_and_time(db, client):
    await a_location(db)
    token = await booked(client)

    days = (await client.get(f"/a/{token}/move")).text
    times = (await client.get(f"/a/{token}/move?day=2026-11-25")).text
    moved = await client.post(f"/a/{token}/move", data={"start": "2026-11-25T10:30:00+01:00"})

    assert f'href="/a/{token}/move?day=2026-11-25"' in days
    assert 'value="2026-11-25T10:30:00+01:00"' in times
    assert moved.status_code == 303 and moved.headers["location"] == f"/a/{token}?done=moved"
    assert await status_of(db) == ("confirmed", "2026-11-25T09:30:00+00:00")
    assert TUESDAY_0900 in await free_on_tuesday(client)


async def test_moving_to_a_time_taken_meanwhile_keeps_the_old_one(db, client):
    await a_location(db)
    token = await booked(client)
    await booked(client, "2026-11-25T10:30:00+01:00", email="max@example.org")

    response = await client.post(f"/a/{token}/move", data={"start": "2026-11-25T10:30:00+01:00"})

    assert response.status_code == 409
    assert "Ihr Termin ist unverändert." in response.text
    assert 'role="alert"' in response.text
    assert 'value="2026-11-25T10:40:00+01:00"' in response.text  # other times of that day
    async with db.read() as session:
        mine = await session.scalar(select(Appointment).where(Appointment.id == 1))
    assert mine.start_at.isoformat() == "2026-11-24T08:00:00+00:00"


async def test_the_confirmation_link_shows_a_button_and_only_the_post_confirms(db, client):
    await a_location(db, double_opt_in=True)
    token = await booked(client)
    after_booking = (await client.get(f"/a/{token}/booked")).text

    shown = await client.get(f"/a/{token}/confirm")
    assert (await status_of(db))[0] == "pending"
    confirmed = await client.post(f"/a/{token}/confirm")

    assert "Bitte bestätigen Sie Ihren Termin" in after_booking
    assert shown.status_code == 200
    assert f'<form method="post" action="/a/{token}/confirm' in shown.text
    assert confirmed.status_code == 303
    assert (await status_of(db))[0] == "confirmed"
    page = (await client.get(confirmed.headers["location"])).text
    assert "Vielen Dank: Ihr Termin ist bestätigt." in page


async def test_an_unknown_link_gets_a_friendly_404(db, client):
    await a_location(db)
    token = await booked(client)
    wrong = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    for path in (f"/a/{wrong}", f"/a/{wrong}/confirm", "/a/nonsense/cancel"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "<h1>Termin nicht gefunden</h1>" in response.text
        assert 'href="/"' in response.text
    posted = await client.post(f"/a/{wrong}/cancel")
    assert posted.status_code == 404
    assert (await status_of(db))[0] == "confirmed"


async def test_the_access_log_never_carries_the_token(db, client, caplog):
    await a_location(db, double_opt_in=True)
    with caplog.at_level(logging.INFO, logger="aufruf.access"):
        token = await booked(client)
        for path in ("", "/booked", "/confirm", "/cancel", "/move"):
            await client.get(f"/a/{token}{path}")
        await client.post(f"/a/{token}/confirm")

    lines = [r.getMessage() for r in caplog.records if r.name == "aufruf.access"]
    assert "GET /a/…/confirm 200" in " ".join(lines)
    assert not [line for line in lines if token in line]


async def test_the_link_from_the_email_opens_in_the_language_it_was_booked_in(db, client):
    await a_location(db)
    response = await client.post(
        "/book?lang=uk",
        data={
            "authority": "amt",
            "service": "pass",
            "location": "amt",
            "start": TUESDAY_0900,
            "name": "Olena",
            "email": "olena@example.org",
            "consent": "1",
        },
    )
    token = response.headers["location"].split("/")[2]

    german_browser = {"Accept-Language": "de-DE,de"}
    own = await client.get(f"/a/{token}", headers=german_browser)
    chosen = await client.get(f"/a/{token}?lang=de", headers=german_browser)

    assert "set-cookie" not in response.headers  # answering in a language sets no cookie
    assert '<html lang="uk" dir="ltr">' in own.text and "<h1>Ваш запис</h1>" in own.text
    assert "вівторок, 24 листопада 2026" in own.text
    assert 'lang="uk" hreflang="uk" aria-current="true"' in own.text
    assert '<html lang="de"' in chosen.text  # a language chosen with the switch wins


async def test_the_confirmation_of_a_cancelled_booking_shows_its_state(db, client):
    await a_location(db)
    token = await booked(client)
    await client.post(f"/a/{token}/cancel")

    response = await client.get(f"/a/{token}/booked")

    assert response.status_code == 303 and response.headers["location"] == f"/a/{token}"
