"""The outbox for staff (/admin/outbox): without an SMTP server messages are kept and a
supervisor reads those of its locations; the list shows no addresses, the detail page the
message as it would be sent now; nothing of it reaches the logs."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import select

from aufruf.auth import passwords
from aufruf.auth.service import create_user
from aufruf.db import Database
from aufruf.notifications.model import OutboxMessage
from tests.builders import a_location
from tests.conftest import running
from tests.notifications.conftest import a_booking, delivery_to

PASSWORD = "correct horse battery"
START = "2026-11-24T09:00:00+01:00"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture
async def staff(db: Database, clock, location) -> None:
    """Locations "amt" and "other"; supervisor sina at "amt", supervisor otto at "other",
    clerk anna at "amt", admin root everywhere."""
    await a_location(db, "other", services={"other": 20})
    async with db.write() as session:
        await create_user(session, clock.now(), "sina", PASSWORD, "supervisor", ["amt"])
        await create_user(session, clock.now(), "otto", PASSWORD, "supervisor", ["other"])
        await create_user(session, clock.now(), "anna", PASSWORD, "clerk", ["amt"])
        await create_user(session, clock.now(), "root", PASSWORD, "admin", [])


@pytest.fixture
async def browser(db, settings, clock) -> AsyncIterator:
    """`await browser(username)`: a client of its own, signed in as `username` (or not)."""
    from aufruf.app import create_app

    app = create_app(settings, db=db, clock=clock)
    opened: list[httpx.AsyncClient] = []

    async def at(username: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.10", 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        if username is not None:
            page = await client.get("/login")
            token = re.search(r'name="_csrf_token" value="([^"]*)"', page.text)
            answer = await client.post(
                "/login",
                data={"_csrf_token": token[1], "username": username, "password": PASSWORD},
            )
            assert answer.status_code == 303, answer.text
        return client

    async with running(app):
        yield at
        for client in opened:
            await client.aclose()


@pytest.fixture
async def kept(db, clock, staff):
    """A booking at "amt" whose confirmation was kept (no SMTP server)."""
    booked = await a_booking(db, clock, START)
    outcome = await delivery_to(db, None).run(clock.now())
    assert outcome.kept == 1
    async with db.read() as session:
        [message] = list(await session.scalars(select(OutboxMessage)))
    assert (message.status, message.kind) == ("kept", "booking_confirmed")
    return booked, message


async def test_without_a_session_the_outbox_sends_to_the_login(browser, staff):
    client = await browser()

    answer = await client.get("/admin/outbox")
    detail = await client.get("/admin/outbox/1")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fadmin%2Foutbox"
    assert detail.status_code == 303
    assert detail.headers["location"].startswith("/login?next=")


async def test_a_clerk_may_not_read_the_outbox(browser, kept):
    _, message = kept
    client = await browser("anna")

    listing = await client.get("/admin/outbox")
    detail = await client.get(f"/admin/outbox/{message.id}")

    assert listing.status_code == 403
    assert "Nicht erlaubt" in listing.text
    assert detail.status_code == 403


async def test_the_supervisor_sees_the_kept_confirmation_without_the_address(browser, kept):
    booked, message = kept
    client = await browser("sina")

    page = await client.get("/admin/outbox")

    assert page.status_code == 200
    assert "<h1>Postausgang</h1>" in page.text
    assert "<caption" in page.text
    assert '<th scope="col">Status</th>' in page.text
    assert f'href="/admin/outbox/{message.id}"' in page.text
    assert 'data-status="kept">aufbewahrt</td>' in page.text
    assert booked.appointment.code in page.text
    assert "Buchung bestätigt" in page.text
    assert re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", page.text) is None  # no address at all
    assert "ada@example.org" not in page.text
    assert "Ada Lovelace" not in page.text
    assert booked.token not in page.text


async def test_the_list_is_in_english_and_filters_by_status(browser, kept):
    booked, message = kept
    client = await browser("sina")

    kept_page = await client.get("/admin/outbox", params={"status": "kept", "lang": "en"})
    sent_page = await client.get("/admin/outbox", params={"status": "sent"})

    assert "<h1>Outbox</h1>" in kept_page.text
    assert '<option value="kept" selected>kept</option>' in kept_page.text
    assert booked.appointment.code in kept_page.text
    assert f'href="/admin/outbox/{message.id}"' not in sent_page.text
    assert "There are no messages." in sent_page.text


async def test_the_detail_page_renders_the_message_as_of_now(browser, kept, caplog):
    booked, message = kept
    client = await browser("sina")

    with caplog.at_level(logging.DEBUG):
        page = await client.get(f"/admin/outbox/{message.id}")

    assert page.status_code == 200
    assert "Ihr Termin am Dienstag, 24. November 2026 um 09:00" in page.text
    assert "Ada Lovelace &lt;ada@example.org&gt;" in page.text
    body = re.search(r'<pre class="mail-text"[^>]*>(.*?)</pre>', page.text, re.S)
    assert body and booked.appointment.code in body[1]
    assert f"/a/{booked.token}" in body[1]  # the manage link, for staff
    assert page.headers["cache-control"] == "no-store"
    logged = caplog.text
    assert booked.token not in logged
    assert "ada@example.org" not in logged
    assert "Ihr Termin am" not in logged


async def test_a_message_that_no_longer_applies_shows_why(browser, db, clock, kept):
    booked, message = kept
    from aufruf.booking import service as booking
    from tests.conftest import SECRET

    async with db.write() as session:
        appointment = await booking.by_token(session, SECRET, booked.token, for_update=True)
        await booking.cancel_by_citizen(session, appointment, clock.now())
    client = await browser("sina")

    page = await client.get(f"/admin/outbox/{message.id}", params={"lang": "en"})

    assert page.status_code == 200
    assert "This message would not be sent any more" in page.text
    assert "cancelled" in page.text


async def test_a_supervisor_elsewhere_neither_lists_nor_reads_it(browser, kept):
    booked, message = kept
    client = await browser("otto")

    listing = await client.get("/admin/outbox")
    detail = await client.get(f"/admin/outbox/{message.id}")

    assert listing.status_code == 200
    assert f'href="/admin/outbox/{message.id}"' not in listing.text
    assert booked.appointment.code not in listing.text
    assert detail.status_code == 403
    assert "Ihr Termin am" not in detail.text


async def test_an_admin_reads_every_location_and_an_unknown_message_is_not_found(browser, kept):
    _, message = kept
    client = await browser("root")

    listing = await client.get("/admin/outbox")
    missing = await client.get("/admin/outbox/9999")

    assert f'href="/admin/outbox/{message.id}"' in listing.text
    assert missing.status_code == 404
    assert "Nachricht nicht gefunden" in missing.text
