"""The kiosk's pages (/kiosk/{L}) as the touch screen's browser uses them, without JavaScript:
registered once by its token, tiles for the services, tickets, check-in and its refusals in
the visitor's language, and "closed" outside the hours for walk-ins."""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aufruf.auth.service import create_token, revoke_token
from aufruf.booking.service import BookingRequest, book
from aufruf.offices.model import Kiosk
from aufruf.queue.model import Ticket
from tests.builders import a_location
from tests.conftest import SECRET


async def a_token(db, clock, role: str, **binding) -> str:
    async with db.write() as session:
        return (await create_token(session, clock.now(), role=role, **binding)).token


@pytest.fixture
async def office(db, clock) -> str:
    """Location "amt" open 08:00-12:00 on weekdays (two services, a kiosk), location "other";
    the clock on Monday 09:00 in Berlin. Returns the kiosk's token."""
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=2)
    await a_location(db, "other", counters=1)
    async with db.write() as session:
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
        session.add(Kiosk(id="other-kiosk", location_id="other", name="Eingang", active=True))
    return await a_token(db, clock, "kiosk", location="amt")


async def registered(client, token: str, location: str = "amt") -> None:
    answer = await client.get(f"/kiosk/{location}", params={"token": token})
    assert answer.status_code == 303, answer.text


def form_token(page: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert found, "no form token on the screen"
    return found.group(1)


async def start_screen(client, lang: str | None = None) -> str:
    page = await client.get("/kiosk/amt", params={"lang": lang} if lang else None)
    assert page.status_code == 200, page.text
    return page.text


async def draw(client, service: str = "pass", lang: str | None = None):
    page = await start_screen(client, lang)
    query = f"?lang={lang}" if lang else ""
    return await client.post(
        f"/kiosk/amt/tickets{query}", data={"service": service, "_csrf_token": form_token(page)}
    )


async def check_in(client, code: str, lang: str | None = None):
    page = await start_screen(client, lang)
    query = f"?lang={lang}" if lang else ""
    return await client.post(
        f"/kiosk/amt/checkin{query}", data={"code": code, "_csrf_token": form_token(page)}
    )


async def tickets(db) -> list[Ticket]:
    async with db.read() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


async def booked(db, clock, start: datetime, location: str = "amt") -> str:
    async with db.write() as session:
        made = await book(
            session,
            SECRET,
            clock.now() - timedelta(days=2),
            BookingRequest(
                location=location,
                services=["pass"],
                start=start,
                name="Erika Muster",
                email=f"e{start.hour}{start.minute}{start.day}@example.org",
            ),
        )
    return made.appointment.code


def text_of(page: str) -> str:
    """The page's text as a visitor reads it (tags dropped, whitespace folded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


# --- registering the device ------------------------------------------------------------------


async def test_the_token_goes_into_a_strict_cookie_and_leaves_the_address(client, office, caplog):
    with caplog.at_level(logging.INFO, logger="aufruf"):
        answer = await client.get("/kiosk/amt", params={"token": office, "lang": "en"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/kiosk/amt?lang=en"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"aufruf_kiosk={office};")
    assert "HttpOnly" in cookie and "Path=/kiosk/amt" in cookie
    assert "samesite=strict" in cookie.lower()
    assert [r for r in caplog.records if r.name.startswith("aufruf")], "nothing was logged"
    assert not [
        r for r in caplog.records if r.name.startswith("aufruf") and office in r.getMessage()
    ]
    page = await client.get("/kiosk/amt")
    assert page.status_code == 200
    assert office not in page.text


async def test_a_browser_without_a_kiosk_token_is_told_it_is_not_registered(client, office):
    page = await client.get("/kiosk/amt")

    assert page.status_code == 401
    assert "<h1>Dieses Gerät ist nicht registriert</h1>" in page.text
    assert "aufruf token create --role kiosk --location amt" in text_of(page.text)


async def test_an_unknown_token_is_refused_and_not_repeated_on_the_page(client, office):
    page = await client.get("/kiosk/amt", params={"token": "not-a-token-at-all"})

    assert page.status_code == 401
    assert "not-a-token-at-all" not in page.text
    assert "set-cookie" not in page.headers


@pytest.mark.parametrize("role", ["display", "clerk"])
async def test_a_token_of_another_role_is_refused(client, office, db, clock, role):
    token = await a_token(db, clock, role, location="amt")

    page = await client.get("/kiosk/amt", params={"token": token})

    assert page.status_code == 403
    assert "Dieses Gerät ist nicht registriert" in page.text


async def test_the_kiosk_of_one_location_cannot_serve_another(client, office):
    answer = await client.get("/kiosk/other", params={"token": office})

    assert answer.status_code == 403


async def test_a_revoked_token_stops_the_kiosk_at_once(client, office, db, clock):
    await registered(client, office)
    async with db.write() as session:
        from aufruf.auth.model import ApiToken

        row = await session.scalar(select(ApiToken).where(ApiToken.role == "kiosk"))
        await revoke_token(session, row.id, clock.now())

    assert (await client.get("/kiosk/amt")).status_code == 401
    refused = await client.post("/kiosk/amt/tickets", data={"service": "pass"})
    assert refused.status_code == 401
    assert await tickets(db) == []


# --- the start screen ------------------------------------------------------------------------


async def test_the_start_screen_has_a_big_tile_per_service_in_the_visitors_language(client, office):
    await registered(client, office)

    german = await start_screen(client)
    english = await start_screen(client, "en")

    # in the directory's order (position, then id)
    assert re.findall(r'class="tile" name="service" value="(\w+)">([^<]+)<', german) == [
        ("other", "Other"),
        ("pass", "Pass"),
    ]
    assert re.findall(r'class="tile" name="service" value="(\w+)">([^<]+)<', english) == [
        ("other", "other"),
        ("pass", "pass"),
    ]
    assert '<h2 id="appointment-heading">Ich habe einen Termin</h2>' in german
    assert '<h2 id="appointment-heading">I have an appointment</h2>' in english
    assert 'action="/kiosk/amt/tickets?lang=en"' in english


async def test_the_device_language_screen_is_home_and_a_chosen_language_is_not(client, office):
    await registered(client, office)

    assert "data-kiosk-home" in await start_screen(client)
    assert "data-kiosk-home" not in await start_screen(client, "tr")
    assert 'data-idle-seconds="30"' in await start_screen(client, "tr")


# --- drawing a ticket ------------------------------------------------------------------------


async def test_a_tap_on_a_tile_draws_a_ticket_and_shows_it_with_its_qr_code(client, office, db):
    await registered(client, office)

    answer = await draw(client, "pass")

    assert answer.status_code == 201, answer.text
    [ticket] = await tickets(db)
    assert (ticket.number, ticket.source, ticket.kiosk_id) == ("A001", "kiosk", "amt-kiosk")
    assert f'<span class="ticket-number" id="ticket-number">{ticket.number}</span>' in answer.text
    assert '<p class="ticket-services">Pass</p>' in answer.text
    assert "Niemand ist vor Ihnen." in answer.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="qr"' in answer.text
    assert answer.headers["cache-control"] == "no-store"


async def test_people_ahead_and_the_wait_are_shown(client, office):
    await registered(client, office)
    await draw(client, "pass")
    await draw(client, "pass")

    third = await draw(client, "pass", lang="en")

    assert "A003" in third.text
    assert "2 people are ahead of you." in third.text


async def test_a_form_without_the_kiosks_form_token_draws_nothing(client, office, db):
    await registered(client, office)

    forged = await client.post("/kiosk/amt/tickets", data={"service": "pass"})
    wrong = await client.post(
        "/kiosk/amt/tickets", data={"service": "pass", "_csrf_token": "x" * 43}
    )

    assert forged.status_code == wrong.status_code == 403
    assert "Bitte beginnen Sie noch einmal" in forged.text
    assert await tickets(db) == []


async def test_a_service_not_offered_here_is_asked_again(client, office, db):
    await registered(client, office)

    answer = await draw(client, "nonsense")

    assert answer.status_code == 400
    assert "Bitte wählen Sie ein Anliegen" in answer.text
    assert await tickets(db) == []


# --- checking in -----------------------------------------------------------------------------


async def test_check_in_with_the_code_in_any_case_and_with_spaces(client, office, db, clock):
    code = await booked(db, clock, datetime(2026, 11, 23, 8, 10, tzinfo=UTC))
    await registered(client, office)

    answer = await check_in(client, f" {code[:3].lower()} {code[3:]} ")

    assert answer.status_code == 201, answer.text
    [ticket] = await tickets(db)
    assert ticket.number == "T001" and ticket.kiosk_id == "amt-kiosk"
    assert 'id="ticket-number">T001</span>' in answer.text
    assert "Ihr Termin: 09:10" in answer.text


async def test_an_unknown_code_is_a_kind_404(client, office):
    await registered(client, office)

    answer = await check_in(client, "ZZZZZZ")

    assert answer.status_code == 404
    assert "<h1>Code nicht gefunden</h1>" in answer.text


CHECK_IN_REFUSALS = {
    # reason: (appointment start in UTC, German heading, English heading)
    "too_early": (datetime(2026, 11, 23, 10, 30, tzinfo=UTC), "Sie sind zu früh", "You are early"),
    "too_late": (
        datetime(2026, 11, 23, 7, 30, tzinfo=UTC),
        "Ihre Terminzeit ist vorbei",
        "Your appointment time has passed",
    ),
    "wrong_day": (
        datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
        "Ihr Termin ist an einem anderen Tag",
        "Your appointment is on another day",
    ),
}


@pytest.mark.parametrize("reason", sorted(CHECK_IN_REFUSALS))
async def test_a_refused_check_in_is_explained_kindly(client, office, db, clock, reason):
    start, german, english = CHECK_IN_REFUSALS[reason]
    code = await booked(db, clock, start)
    await registered(client, office)

    in_german = await check_in(client, code)
    in_english = await check_in(client, code, lang="en")

    assert in_german.status_code == in_english.status_code == 409
    assert f"<h1>{german}</h1>" in in_german.text
    assert f"<h1>{english}</h1>" in in_english.text
    assert await tickets(db) == []


async def test_too_late_offers_a_walk_in_ticket_on_the_spot(client, office, db, clock):
    code = await booked(db, clock, datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
    await registered(client, office)

    refused = await check_in(client, code)
    walk_in = await client.post(
        "/kiosk/amt/tickets", data={"service": "pass", "_csrf_token": form_token(refused.text)}
    )

    assert 'class="tile" name="service" value="pass"' in refused.text
    assert walk_in.status_code == 201
    assert [t.number for t in await tickets(db)] == ["A001"]


async def test_an_appointment_elsewhere_names_the_right_office(client, office, db, clock):
    code = await booked(db, clock, datetime(2026, 11, 23, 8, 10, tzinfo=UTC), location="other")
    await registered(client, office)

    answer = await check_in(client, code)

    assert answer.status_code == 409
    assert "<h1>Ihr Termin ist an einem anderen Standort</h1>" in answer.text
    assert "Standort other, Rathausstraße 11, 58095 Hagen" in answer.text


async def test_a_cancelled_appointment_and_a_second_check_in(client, office, db, clock):
    from aufruf.booking.model import Appointment
    from aufruf.booking.service import cancel

    cancelled = await booked(db, clock, datetime(2026, 11, 23, 8, 20, tzinfo=UTC))
    twice = await booked(db, clock, datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    async with db.write() as session:
        row = await session.scalar(select(Appointment).where(Appointment.code == cancelled))
        await cancel(session, row, clock.now())
    await registered(client, office)

    gone = await check_in(client, cancelled)
    first = await check_in(client, twice)
    second = await check_in(client, twice, lang="en")

    assert gone.status_code == 409 and "<h1>Dieser Termin wurde abgesagt</h1>" in gone.text
    assert 'class="tile" name="service" value="pass"' in gone.text  # a ticket instead
    assert first.status_code == 201
    assert second.status_code == 409 and "<h1>You have already checked in</h1>" in second.text


async def test_an_empty_code_asks_for_the_code(client, office):
    await registered(client, office)

    answer = await check_in(client, "  ")

    assert answer.status_code == 400
    assert "Bitte geben Sie Ihren Buchungscode ein" in answer.text


# --- closed ----------------------------------------------------------------------------------


async def test_before_opening_the_kiosk_is_closed_says_when_and_still_checks_in(
    client, office, db, clock
):
    clock.set(datetime(2026, 11, 23, 6, 30, tzinfo=UTC))  # Monday 07:30, opens at 08:00
    code = await booked(db, clock, datetime(2026, 11, 23, 7, 0, tzinfo=UTC))
    await registered(client, office)

    page = await start_screen(client)
    drawn = await client.post(
        "/kiosk/amt/tickets", data={"service": "pass", "_csrf_token": form_token(page)}
    )
    checked_in = await check_in(client, code)

    assert '<h2 id="walk-in-heading">Geschlossen</h2>' in page
    assert "Wartenummern gibt es heute wieder ab 08:00 Uhr." in page
    assert 'name="service"' not in page
    assert drawn.status_code == 409
    assert checked_in.status_code == 201
    assert [t.number for t in await tickets(db)] == ["T001"]


async def test_after_the_walk_in_cut_off_it_says_the_next_working_day(client, db, clock):
    clock.set(datetime(2026, 11, 27, 10, 40, tzinfo=UTC))  # Friday 11:40, closes at 12:00
    await a_location(db, "amt", queue={"walk_in_cutoff_minutes": 30})
    async with db.write() as session:
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
    await registered(client, await a_token(db, clock, "kiosk", location="amt"))

    german = await start_screen(client)
    english = await start_screen(client, "en")

    assert "Wartenummern gibt es wieder am Montag, 30. November 2026 ab 08:00 Uhr." in text_of(
        german
    )
    assert "Tickets are given out again on Monday, November 30, 2026 from 8:00" in text_of(english)


async def test_on_a_public_holiday_the_next_opening_skips_it(client, db, clock):
    clock.set(datetime(2026, 12, 24, 12, 0, tzinfo=UTC))  # Thursday 24 December, 13:00
    await a_location(db, "amt")
    async with db.write() as session:
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
    await registered(client, await a_token(db, clock, "kiosk", location="amt"))

    page = text_of(await start_screen(client))

    # the 25th and 26th are holidays in NRW, then a weekend
    assert "Wartenummern gibt es wieder am Montag, 28. Dezember 2026 ab 08:00 Uhr." in page


async def test_the_demo_offices_name_their_services_in_every_kiosk_language(client, db, clock):
    from aufruf.offices.config import DEMO_FILE
    from aufruf.offices.importer import import_file

    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    await import_file(db, DEMO_FILE, clock.now())
    token = await a_token(db, clock, "kiosk", location="buergeramt-mitte")
    await client.get("/kiosk/buergeramt-mitte", params={"token": token})

    tiles = {}
    for lang in ("de", "en", "tr", "ru", "uk", "ar"):
        page = await client.get("/kiosk/buergeramt-mitte", params={"lang": lang})
        tiles[lang] = re.findall(r'value="personalausweis">([^<]+)<', page.text)

    assert tiles == {
        "de": ["Personalausweis beantragen"],
        "en": ["Apply for an ID card"],
        "tr": ["Kimlik kartı başvurusu"],
        "ru": ["Оформить удостоверение личности"],
        "uk": ["Оформити посвідчення особи"],
        "ar": ["طلب بطاقة هوية شخصية"],
    }
