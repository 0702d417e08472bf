"""The booking site, step by step, as a browser without JavaScript sees it (server-rendered
HTML over the app's real routes, on SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from aufruf.booking.model import Appointment
from aufruf.offices.model import Authority
from tests.builders import a_location

TUESDAY_0900 = "2026-11-24T09:00:00+01:00"
TWO_PASSPORTS = "authority=amt&service=pass&service=pass"
DETAILS = (
    f"/details?{TWO_PASSPORTS}&location=amt&day=2026-11-24&start=2026-11-24T09%3A00%3A00%2B01%3A00"
)


def links(page: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', page)]


def a_form(**fields: str) -> dict:
    form = {
        "authority": "amt",
        "service": ["pass", "pass"],
        "location": "amt",
        "start": TUESDAY_0900,
        "name": "Erika Mustermann",
        "email": "erika@example.org",
        "phone": "",
        "consent": "1",
    }
    form.update(fields)
    return form


async def book_through_the_site(client, **fields: str):
    return await client.post("/book", data=a_form(**fields))


async def test_one_authority_leads_straight_to_its_concerns(db, client):
    await a_location(db)

    response = await client.get("/")

    assert response.status_code == 303
    assert response.headers["location"] == "/services?authority=amt"


async def test_the_first_step_lists_the_authorities(db, client):
    await a_location(db)
    async with db.write() as session:
        session.add(Authority(id="kfz", name={"de": "Zulassungsstelle"}, position=1, active=True))
    await a_location_of_kfz(db)

    page = (await client.get("/")).text

    assert "<title>Schritt 1 von 6: Behörde – Terminvergabe</title>" in page
    assert 'href="/services?authority=amt">Amt</a>' in page
    assert 'href="/services?authority=kfz">Zulassungsstelle</a>' in page


async def a_location_of_kfz(db) -> None:
    from aufruf.offices.model import Location, LocationService, Service

    async with db.write() as session:
        session.add(
            Service(
                id="zulassung",
                authority_id="kfz",
                group_id="g",
                name={"de": "Zulassung"},
                duration_minutes=20,
                max_quantity=1,
            )
        )
        session.add(Location(id="kfz-1", authority_id="kfz", name={"de": "Kfz"}, address="Weg 1"))
        await session.flush()
        session.add(LocationService(location_id="kfz-1", service_id="zulassung"))


async def test_concerns_are_chosen_with_a_quantity_up_to_the_maximum(db, client):
    await a_location(db, max_quantity=3)

    page = (await client.get("/services?authority=amt")).text
    chosen = await client.get("/services?authority=amt&choose=1&qty-pass=2")

    assert "<title>Schritt 2 von 6: Anliegen – Terminvergabe</title>" in page
    assert '<label for="qty-pass">Pass</label>' in page
    assert re.findall(r'<option value="(\d)"', page) == ["0", "1", "2", "3"]
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/location?authority=amt&service=pass&service=pass"


async def test_choosing_no_concern_is_an_error_tied_to_the_field_and_announced(db, client):
    await a_location(db)

    response = await client.get("/services?authority=amt&choose=1&qty-pass=0")
    page = response.text

    assert response.status_code == 400
    assert "<title>Fehler: Schritt 2 von 6: Anliegen – Terminvergabe</title>" in page
    assert 'role="alert"' in page and "autofocus" in page
    assert '<a href="#qty-pass">Bitte wählen Sie mindestens ein Anliegen.</a>' in page
    select = re.search(r"<select[^>]*>", page).group(0)
    assert 'aria-invalid="true"' in select
    assert 'aria-describedby="services-error"' in select
    assert 'id="services-error"' in page


async def test_more_than_the_maximum_is_refused(db, client):
    await a_location(db, max_quantity=2)

    response = await client.get("/services?authority=amt&choose=1&qty-pass=7")

    assert response.status_code == 400
    assert "Wählen Sie eine Zahl von 0 bis 2." in response.text


async def test_a_single_location_is_skipped(db, client):
    await a_location(db)

    response = await client.get(f"/location?{TWO_PASSPORTS}")

    assert response.status_code == 303
    assert response.headers["location"] == f"/day?{TWO_PASSPORTS}&location=amt"


async def test_only_locations_offering_every_chosen_concern_are_offered(db, client):
    await a_location(db, "amt", services={"pass": 10, "id": 10})
    await a_location(db, "nord", services={"pass": 10, "id": 10})
    await a_location(db, "sued", services={"pass": 10})

    page = (await client.get("/location?authority=amt&service=pass&service=id")).text

    assert "<title>Schritt 3 von 6: Standort – Terminvergabe</title>" in page
    assert "Standort amt" in page and "Standort nord" in page
    assert "Standort sued" not in page
    assert "Rathausstraße 11, 58095 Hagen" in page
    assert "Nächster freier Tag: Montag, 23. November 2026" in page


async def test_the_calendar_shows_two_weeks_and_marks_days_without_free_times(db, client):
    await a_location(db, hours="08:00-12:00")
    for hour in ("09:00", "09:10", "09:20", "09:30", "09:40", "09:50"):
        # Monday: every time from 09:00 (the lead time ends at 09:00) is booked
        await client.post(
            "/api/v1/appointments",
            json={
                "location": "amt",
                "services": ["pass"],
                "start": f"2026-11-23T{hour}:00+01:00",
                "name": "X",
                "email": f"x{hour[3]}{hour[4]}@example.org",
            },
        )
    for hour in ("10", "11"):
        for minute in ("00", "10", "20", "30", "40", "50"):
            await client.post(
                "/api/v1/appointments",
                json={
                    "location": "amt",
                    "services": ["pass"],
                    "start": f"2026-11-23T{hour}:{minute}:00+01:00",
                    "name": "X",
                    "email": f"y{hour}{minute}@example.org",
                },
            )

    page = (await client.get(f"/day?{TWO_PASSPORTS}&location=amt")).text
    days = re.findall(r'<li class="day day-(\w+)">', page)

    assert "<title>Schritt 4 von 6: Tag – Terminvergabe</title>" in page
    assert len(days) == 15  # today and the next 14 days, none left out
    assert days[0] == "full"
    assert "Mo., 23. Nov." in page and "keine freien Zeiten" in page
    assert days[5:7] == ["closed", "closed"]  # the weekend
    assert "Sa., 28. Nov." in page and "geschlossen" in page
    assert days[1] == "free"
    assert "23 freie Zeiten" in page  # Tuesday: 20 minutes for two, from 08:00 to 11:40
    assert f"/time?{TWO_PASSPORTS}&location=amt&day=2026-11-24" in links(page)


async def test_the_time_step_lists_the_free_times_of_the_day(db, client):
    await a_location(db)

    page = (await client.get(f"/time?{TWO_PASSPORTS}&location=amt&day=2026-11-24")).text

    assert "<title>Schritt 5 von 6: Uhrzeit – Terminvergabe</title>" in page
    assert "Dienstag, 24. November 2026" in page
    times = re.findall(r'<li><a href="/details[^"]*">([^<]+)</a></li>', page)
    assert times[0] == "08:00" and times[-1] == "11:40" and len(times) == 23
    assert DETAILS.replace("&", "&amp;").split("&amp;start")[0] in page


async def test_the_details_form_says_what_is_booked(db, client):
    await a_location(db)

    page = (await client.get(DETAILS)).text

    assert "<title>Schritt 6 von 6: Ihre Angaben – Terminvergabe</title>" in page
    assert "Dienstag, 24. November 2026" in page and "09:00" in page
    assert "2 × Pass" in page
    assert '<input type="hidden" name="start" value="2026-11-24T09:00:00+01:00">' in page
    assert '<a class="consent-link" href="/privacy">' in page
    assert 'autocomplete="email"' in page


async def test_booking_leads_to_the_confirmation_with_code_qr_and_links(db, client):
    await a_location(db)

    response = await book_through_the_site(client)
    assert response.status_code == 303
    confirmation = response.headers["location"]
    token = re.fullmatch(r"/a/([^/]+)/booked", confirmation).group(1)
    page = (await client.get(confirmation)).text

    async with db.read() as session:
        appointment = (await session.scalars(select(Appointment))).one()
    assert appointment.status == "confirmed"
    assert appointment.language == "de"
    assert "<h1>Ihr Termin ist gebucht</h1>" in page
    assert f'<dd class="code">{appointment.code}</dd>' in page
    assert "Dienstag, 24. November 2026" in page and ">09:00</time> – 09:20" in page
    assert "Standort amt" in page and "Rathausstraße 11, 58095 Hagen" in page
    assert f'href="/api/v1/appointments/{token}/calendar.ics"' in page
    assert f'href="/a/{token}"' in page
    assert decoded_qr(page) == appointment.code
    calendar = await client.get(f"/api/v1/appointments/{token}/calendar.ics")
    assert calendar.status_code == 200 and "BEGIN:VEVENT" in calendar.text


def decoded_qr(page: str) -> str:
    """The text of the page's inline SVG QR code, drawn with Pillow and read with zbar."""
    from PIL import Image, ImageDraw
    from pyzbar.pyzbar import decode

    svg = re.search(r"<svg[^>]*class=\"qr-code\".*?</svg>", page, re.S).group(0)
    size = int(float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1)))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, x2, y2 in re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", svg):
        draw.rectangle(
            [float(x) * scale, float(y) * scale, float(x2) * scale - 1, float(y2) * scale - 1],
            fill=0,
        )
    return decode(image)[0].data.decode()


async def test_the_booking_keeps_the_language_of_the_page(db, client):
    await a_location(db)

    response = await client.post("/book?lang=ar", data=a_form())
    page = (await client.get(response.headers["location"] + "?lang=ar")).text

    async with db.read() as session:
        appointment = (await session.scalars(select(Appointment))).one()
    assert appointment.language == "ar"
    assert '<html lang="ar" dir="rtl">' in page
    assert "تم حجز موعدك" in page
    assert "<dt>رمز الحجز</dt>" in page  # the appointment's facts too, not only the heading
    assert "Buchungscode" not in page


async def test_form_errors_are_tied_to_their_fields_and_the_entries_kept(db, client):
    await a_location(db)

    response = await book_through_the_site(client, name="  ", email="erika@", consent="")
    page = response.text

    assert response.status_code == 400
    assert page.count('role="alert"') == 1
    assert '<a href="#name">Bitte geben Sie Ihren Namen ein.</a>' in page
    assert 'aria-invalid="true" aria-describedby="name-error"' in page
    assert 'aria-invalid="true" aria-describedby="email-error email-hint"' in page
    assert 'aria-invalid="true" aria-describedby="consent-error"' in page
    assert 'id="email-error">Das ist keine gültige E-Mail-Adresse.' in page
    assert 'value="erika@"' in page
    async with db.read() as session:
        assert (await session.scalars(select(Appointment))).all() == []


async def test_a_time_taken_meanwhile_offers_the_nearest_free_times_and_keeps_the_entries(
    db, client
):
    await a_location(db)
    first = await book_through_the_site(client, email="max@example.org")
    assert first.status_code == 303

    response = await book_through_the_site(client, phone="+49 2331 123")
    page = response.text

    assert response.status_code == 409
    assert "Leider hat gerade jemand anderes diese Zeit gebucht." in page
    offered = re.findall(r'name="start" value="([^"]+)"', page)
    # 09:00-09:20 is taken, so 08:50 and 09:10 are too: the three free times either side
    assert offered == [
        f"2026-11-24T{t}:00+01:00" for t in ("08:20", "08:30", "08:40", "09:20", "09:30", "09:40")
    ]
    assert 'value="Erika Mustermann"' in page and 'value="+49 2331 123"' in page
    assert 'value="erika@example.org"' in page
    retried = await book_through_the_site(client, start=offered[0])
    assert retried.status_code == 303


async def test_too_many_bookings_get_a_kind_page(db, settings, clock):
    import httpx

    from aufruf.app import create_app
    from tests.conftest import running

    await a_location(db)
    app = create_app(
        settings.__class__(**{**settings.__dict__, "booking_rate_limit": 1}), db=db, clock=clock
    )
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await book_through_the_site(client)).status_code == 303
            response = await book_through_the_site(client, start="2026-11-24T10:00:00+01:00")
            api = await client.post(
                "/api/v1/appointments",
                json={
                    "location": "amt",
                    "services": ["pass"],
                    "start": "2026-11-24T11:00:00+01:00",
                    "name": "Max",
                    "email": "max@example.org",
                },
            )

    assert response.status_code == 429
    assert response.headers["retry-after"]
    assert "Bitte warten Sie einen Moment" in response.text
    assert "Es wurde noch nichts gebucht." in response.text
    assert api.status_code == 429  # the site and the API count together
    assert api.json()["reason"] == "rate_limited"


async def test_a_damaged_link_leads_back_to_the_step_that_needs_it(db, client):
    await a_location(db)

    no_day = await client.get(f"/time?{TWO_PASSPORTS}&location=amt&day=gestern")
    no_start = await client.get(f"/details?{TWO_PASSPORTS}&location=amt&start=bald")
    unknown = await client.get("/day?authority=amt&service=pass&location=nirgends")

    assert no_day.headers["location"] == f"/day?{TWO_PASSPORTS}&location=amt"
    assert no_start.headers["location"].startswith(f"/time?{TWO_PASSPORTS}&location=amt")
    assert unknown.status_code == 303
    assert unknown.headers["location"] == "/location?authority=amt&service=pass"


async def test_the_language_switch_keeps_every_chosen_concern(db, client):
    await a_location(db)

    page = (await client.get(f"/day?{TWO_PASSPORTS}&location=amt")).text
    english = next(u for u in links(page) if u.endswith("lang=en"))

    query = sorted(english.split("?", 1)[1].split("&"))
    assert query == ["authority=amt", "lang=en", "location=amt", "service=pass", "service=pass"]
