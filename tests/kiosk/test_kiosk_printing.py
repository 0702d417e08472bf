"""The kiosk's tickets on paper: a ticket drawn on a kiosk's screen is queued once, on that
kiosk's own printer; the result screen says it is being printed, or, when no paper comes (no
printer, a printer known offline or out of paper), says so kindly and points to the QR code on
the screen and the number, which stay valid."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from aufruf.offices.model import Kiosk
from aufruf.printer import status as printer_status
from aufruf.printer.model import PrintJob
from tests.conftest import running
from tests.kiosk.test_kiosk_pages import draw, registered, text_of, tickets
from tests.printer.conftest import a_printing_office, a_token

PRINTING = {"de": "Ihre Wartemarke wird gedruckt.", "en": "Your ticket is being printed."}
NO_PAPER = {
    "de": "Leider kann keine Wartemarke gedruckt werden. Ihre Nummer gilt trotzdem: Bitte "
    "scannen Sie den QR-Code auf dem Bildschirm mit Ihrem Handy oder notieren Sie sich Ihre "
    "Nummer.",
    "en": "We are sorry: no paper ticket can be printed. Your number is valid all the same: "
    "please scan the QR code on the screen with your phone or note down your number.",
}


@pytest.fixture
def morning(clock):
    """09:00 in Berlin on a working Monday: the office is open."""
    clock.advance(hours=2)
    return clock


@pytest.fixture
async def upstairs(db, settings, morning) -> AsyncIterator[httpx.AsyncClient]:
    """The browser of a second kiosk, on an app instance of its own."""
    from aufruf.app import create_app

    app = create_app(settings, db=db, clock=morning)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 50000))
    async with running(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            yield other


async def jobs(db) -> list[PrintJob]:
    async with db.read() as session:
        return list(await session.scalars(select(PrintJob).order_by(PrintJob.id)))


def paper_sentence(page: str) -> str:
    """What the result screen says about the paper ticket."""
    text = text_of(page)
    said = [s for s in (*PRINTING.values(), *NO_PAPER.values()) if s in text]
    assert len(said) == 1, f"the screen says {len(said)} things about the paper"
    return said[0]


async def test_a_ticket_drawn_on_the_screen_is_queued_once_on_that_kiosks_own_printer(
    db, client, upstairs, morning
):
    office = await a_printing_office(db, morning)
    await registered(client, office.kiosk_a)
    await registered(upstairs, office.kiosk_b)

    first = await draw(client, "pass")
    above = await draw(upstairs, "melde")
    second = await draw(client, "pass")

    assert first.status_code == above.status_code == second.status_code == 201
    drawn = await tickets(db)
    assert [(t.number, t.kiosk_id) for t in drawn] == [
        ("A001", "kiosk-a"),
        ("A002", "kiosk-b"),
        ("A003", "kiosk-a"),
    ]
    assert [(j.ticket_id, j.printer_id, j.kind, j.status) for j in await jobs(db)] == [
        (drawn[0].id, "drucker-a", "ticket", "queued"),
        (drawn[1].id, "drucker-b", "ticket", "queued"),
        (drawn[2].id, "drucker-a", "ticket", "queued"),
    ]


async def test_a_check_in_on_the_screen_prints_on_the_kiosks_printer_too(db, client, morning):
    from datetime import UTC, datetime

    from tests.kiosk.test_kiosk_pages import booked, check_in

    office = await a_printing_office(db, morning)
    code = await booked(db, morning, datetime(2026, 11, 23, 8, 10, tzinfo=UTC))
    await registered(client, office.kiosk_b)

    answer = await check_in(client, code)

    assert answer.status_code == 201, answer.text
    [ticket] = await tickets(db)
    assert [(j.ticket_id, j.printer_id) for j in await jobs(db)] == [(ticket.id, "drucker-b")]


HEARD_NOW = timedelta(0)
AN_HOUR_AGO = timedelta(hours=1)

PRINTER_STATES = {
    # case: (connection, what was last recorded of the printer and how long ago, on paper)
    "agent connected": ("agent", ({"online": True}, HEARD_NOW), True),
    "agent connected, paper low": ("agent", ({"online": True, "paper": "low"}, HEARD_NOW), True),
    "agent reports paper out": ("agent", ({"online": True, "paper": "out"}, HEARD_NOW), False),
    "agent reports printer offline": ("agent", ({"online": False}, HEARD_NOW), False),
    "agent never connected": ("agent", None, False),
    "agent silent for two minutes": ("agent", ({"online": True}, timedelta(minutes=2)), False),
    "direct printer not tried yet": ("direct", None, True),
    "direct printer printed an hour ago": ("direct", ({"online": True}, AN_HOUR_AGO), True),
    "direct printer refused": (
        "direct",
        ({"online": False, "problem": "cannot reach the printer"}, AN_HOUR_AGO),
        False,
    ),
}


@pytest.mark.parametrize("case", list(PRINTER_STATES))
async def test_the_screen_says_whether_the_ticket_comes_on_paper(db, client, morning, case):
    connection, recorded, on_paper = PRINTER_STATES[case]
    office = await a_printing_office(db, morning, connection=connection, target_a="dummy:/dev/null")
    if recorded is not None:
        state, ago = recorded
        async with db.write() as session:
            await printer_status.note_printer(session, "drucker-a", morning.now() - ago, **state)
    await registered(client, office.kiosk_a)

    german = await draw(client, "pass")
    english = await draw(client, "pass", lang="en")

    assert german.status_code == english.status_code == 201
    assert paper_sentence(german.text) == (PRINTING if on_paper else NO_PAPER)["de"]
    assert paper_sentence(english.text) == (PRINTING if on_paper else NO_PAPER)["en"]
    # the ticket is valid either way: its number and its QR code are on the screen
    assert 'id="ticket-number">A002</span>' in english.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="qr"' in english.text


async def test_a_kiosk_without_a_printer_says_no_paper_comes_and_queues_nothing(
    db, client, morning
):
    await a_printing_office(db, morning)
    async with db.write() as session:
        session.add(Kiosk(id="kiosk-c", location_id="amt", name="Seiteneingang"))
    await registered(client, await a_token(db, morning, "kiosk", location="amt", kiosk="kiosk-c"))

    answer = await draw(client, "pass")

    assert answer.status_code == 201
    assert paper_sentence(answer.text) == NO_PAPER["de"]
    assert 'id="ticket-number">A001</span>' in answer.text
    assert await jobs(db) == []
