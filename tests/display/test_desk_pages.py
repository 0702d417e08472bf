"""The desk's pages (/desk, /desk/{C}) and its read of the day's appointments."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

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


# --- booking for a citizen from the desk --------------------------------------------------


class _Form(HTMLParser):
    """The labels (by the field they name), the fields and the legends of a page's dialog."""

    def __init__(self, dialog_id: str) -> None:
        super().__init__()
        self.dialog_id, self.depth = dialog_id, 0
        self.labels: dict[str, str] = {}
        self.fields: dict[str, dict[str, str | None]] = {}
        self.legends: list[str] = []
        self._text: tuple[str, str | None] | None = None  # ("label", for) or ("legend", None)
        self._parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "dialog" and found.get("id") == self.dialog_id:
            self.depth = 1
            return
        if not self.depth:
            return
        if tag == "dialog":
            self.depth += 1
        if tag in ("input", "select") and found.get("id"):
            self.fields[found["id"]] = found
        if tag in ("label", "legend"):
            self._text, self._parts = (tag, found.get("for")), []

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == "dialog":
            self.depth -= 1
        if self._text and tag == self._text[0]:
            text = " ".join("".join(self._parts).split())
            if tag == "label":
                self.labels[self._text[1]] = text
            else:
                self.legends.append(text)
            self._text = None

    def handle_data(self, data):
        if self._text:
            self._parts.append(data)


def booking_form(html: str) -> _Form:
    form = _Form("book-dialog")
    form.feed(html)
    return form


@pytest.mark.parametrize(
    ("lang", "button", "heading", "labels", "legends"),
    [
        (
            "de",
            "Termin buchen …",
            "Termin für Bürger:in buchen",
            [
                "Name (Pflichtfeld)",
                "Telefon (optional)",
                "E-Mail (optional)",
                "Sprache der Bürger:in",
            ],
            ["Anliegen", "Tag", "Uhrzeit"],
        ),
        (
            "en",
            "Book an appointment…",
            "Book an appointment for a citizen",
            ["Name (required)", "Phone (optional)", "E-mail (optional)", "Language of the citizen"],
            ["Services", "Day", "Time"],
        ),
    ],
)
async def test_the_desk_offers_to_book_for_a_citizen_in_a_dialog_with_labelled_fields(
    client, office, lang, button, heading, labels, legends
):
    await sign_in(client)
    page = (await client.get("/desk/amt-1", params={"lang": lang})).text

    opener = re.search(r'<button[^>]*id="book-open"[^>]*>(.*?)</button>', page, re.S)
    assert opener, "no button to book for a citizen"
    assert 'aria-keyshortcuts="B"' in opener.group(0)
    assert 'aria-haspopup="dialog"' in opener.group(0)
    assert button in opener.group(1)
    assert '<kbd aria-hidden="true">B</kbd>' in opener.group(1)
    assert '<dialog id="book-dialog" class="book-dialog" aria-labelledby="book-heading">' in page
    assert f'<h2 id="book-heading">{heading}</h2>' in page

    form = booking_form(page)
    fields = ["book-name", "book-phone", "book-email", "book-language"]
    assert [form.labels[f] for f in fields] == labels
    assert form.legends == legends
    # every field of the dialog has a label, the services their names and quantities too
    assert set(form.fields) <= set(form.labels)
    services = {
        f["value"]: form.labels[f["id"]] for f in form.fields.values() if f.get("name") == "service"
    }
    assert services == (
        {"pass": "Pass", "other": "Other"} if lang == "de" else {"pass": "pass", "other": "other"}
    )
    quantities = {f["data-quantity-of"] for f in form.fields.values() if f.get("type") == "number"}
    assert quantities == {"pass", "other"}
    # nothing is asked that the phone booking does not need: only the name is required
    assert form.fields["book-name"]["aria-required"] == "true"
    assert "aria-required" not in form.fields["book-email"]
    assert form.fields["book-email"]["type"] == "email"
    assert form.fields["book-phone"]["type"] == "tel"


async def test_the_citizens_language_starts_as_the_pages_and_offers_six(client, office):
    await sign_in(client)
    english = (await client.get("/desk/amt-1", params={"lang": "en"})).text
    german = (await client.get("/desk/amt-1", params={"lang": "de"})).text

    def options(page: str) -> list[tuple[str, bool]]:
        select = re.search(r'<select id="book-language".*?</select>', page, re.S)
        assert select, "no language choice"
        return [
            (code, bool(selected))
            for code, selected in re.findall(r'<option value="(\w+)"[^>]*?( selected)?>', select[0])
        ]

    assert [code for code, _ in options(german)] == ["de", "en", "tr", "ru", "uk", "ar"]
    assert [code for code, selected in options(german) if selected] == ["de"]
    assert [code for code, selected in options(english) if selected] == ["en"]


async def test_the_booking_dialogs_script_texts_are_in_the_pages_language(client, office):
    await sign_in(client)
    german = desk_data((await client.get("/desk/amt-1", params={"lang": "de"})).text)
    english = desk_data((await client.get("/desk/amt-1", params={"lang": "en"})).text)

    assert german["booking"]["slot_taken"].startswith("Diese Uhrzeit wurde gerade vergeben.")
    assert german["booking"]["invalid"]["name"] == "Bitte geben Sie den Namen ein."
    assert german["booking"]["when"] == "%(date)s um %(time)s Uhr"
    assert english["booking"]["invalid"]["name"] == "Enter the citizen's name."
    assert set(german["booking"]) == set(english["booking"])
