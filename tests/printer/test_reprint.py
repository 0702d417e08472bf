"""Tickets cut off mid-print are shown to staff, on the API and on /admin/printers, and are
printed again with one call or one click; a ticket that is no longer active is not."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import select, update

from aufruf.auth import passwords
from aufruf.auth.service import create_user
from aufruf.printer.delivery import PrintDelivery
from aufruf.printer.model import PrintJob
from aufruf.printer.render import RenderConfig
from aufruf.queue.model import Ticket
from tests.conftest import SECRET, running
from tests.printer.conftest import LOCATION, PUBLIC, a_printing_office, draw
from tests.printer.network_printer import NetworkPrinter
from tests.printer.paper import read_paper

PASSWORD = "correct horse battery"
CONFIG = RenderConfig(PUBLIC, SECRET)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


@pytest.fixture
async def printer() -> AsyncIterator[NetworkPrinter]:
    device = NetworkPrinter()
    await device.start()
    yield device
    await device.stop()


@pytest.fixture
async def office(db, morning, printer):
    office = await a_printing_office(
        db, morning, connection="direct", target_a=printer.target, target_b=printer.target
    )
    async with db.write() as session:
        await create_user(session, morning.now(), "anna", PASSWORD, "clerk", [LOCATION])
    return office


@pytest.fixture
async def signed_in(db, settings, morning, office) -> AsyncIterator[httpx.AsyncClient]:
    """The clerk anna's browser, signed in."""
    from aufruf.app import create_app

    app = create_app(settings, db=db, clock=morning)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.10", 50000))
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser,
    ):
        page = await browser.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]*)"', page.text)[1]
        answer = await browser.post(
            "/login", data={"_csrf_token": token, "username": "anna", "password": PASSWORD}
        )
        assert answer.status_code == 303
        yield browser


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def a_cut_off_ticket(db, client, office, printer, morning) -> dict:
    printer.cut_after = 40
    ticket = (await draw(client, office.kiosk_a)).json()
    assert (await PrintDelivery(db, CONFIG).run(morning.now())).interrupted == 1
    printer.cut_after = None
    return ticket


async def test_a_cut_off_ticket_is_listed_and_reprinted_with_one_call(
    db, client, office, printer, morning
):
    ticket = await a_cut_off_ticket(db, client, office, printer, morning)

    listed = await client.get(
        f"/api/v1/locations/{LOCATION}/printers", headers=bearer(office.clerk)
    )
    [entrance] = [p for p in listed.json() if p["id"] == "drucker-a"]
    reprint = await client.post(
        f"/api/v1/tickets/{ticket['id']}/reprint", headers=bearer(office.clerk)
    )
    printed = await PrintDelivery(db, CONFIG).run(morning.now())
    after = await client.get(f"/api/v1/locations/{LOCATION}/printers", headers=bearer(office.clerk))

    assert entrance["interrupted"] == 1
    assert [j["number"] for j in entrance["to_reprint"]] == [ticket["number"]]
    assert entrance["to_reprint"][0]["status"] == "interrupted"
    assert reprint.status_code == 201, reprint.text
    assert reprint.json()["printer"] == "drucker-a" and reprint.json()["kind"] == "reprint"
    assert printed.printed == 1
    [paper] = printer.received
    assert read_paper(paper).has(ticket["number"])
    assert read_paper(paper).qr == f"{PUBLIC}/t/{ticket['token']}"
    [again] = [p for p in after.json() if p["id"] == "drucker-a"]
    assert (again["interrupted"], again["to_reprint"]) == (0, [])


async def test_a_reprint_goes_to_the_printer_asked_for_at_the_tickets_location(
    db, client, office, morning
):
    ticket = (await draw(client, office.kiosk_a)).json()
    url = f"/api/v1/tickets/{ticket['id']}/reprint"

    upstairs = await client.post(url, json={"printer": "drucker-b"}, headers=bearer(office.clerk))
    elsewhere = await client.post(
        url, json={"printer": "other-drucker"}, headers=bearer(office.clerk)
    )
    by_kiosk = await client.post(url, headers=bearer(office.kiosk_a))

    assert upstairs.status_code == 201 and upstairs.json()["printer"] == "drucker-b"
    assert elsewhere.status_code == 400 and elsewhere.json()["extra"][0]["key"] == "printer"
    assert by_kiosk.status_code == 403


async def test_a_ticket_no_longer_active_is_not_reprinted(db, client, office, morning):
    ticket = (await draw(client, office.kiosk_a)).json()
    async with db.write() as session:
        await session.execute(update(Ticket).where(Ticket.id == ticket["id"]).values(status="done"))

    answer = await client.post(
        f"/api/v1/tickets/{ticket['id']}/reprint", headers=bearer(office.clerk)
    )
    unknown = await client.post("/api/v1/tickets/999999/reprint", headers=bearer(office.clerk))

    assert answer.status_code == 409 and answer.json()["reason"] == "not_active"
    assert unknown.status_code == 404
    async with db.read() as session:
        assert len(list(await session.scalars(select(PrintJob)))) == 1


async def test_staff_reprint_a_cut_off_ticket_with_one_click_on_the_printers_page(
    db, client, signed_in, office, printer, morning
):
    ticket = await a_cut_off_ticket(db, client, office, printer, morning)

    page = await signed_in.get("/admin/printers")
    form = re.search(
        r'<form method="post" action="([^"]+)">\s*<input type="hidden" '
        r'name="_csrf_token" value="([^"]+)">',
        page.text,
    )
    clicked = await signed_in.post(form[1], data={"_csrf_token": form[2]})
    shown = await signed_in.get(clicked.headers["location"])
    await PrintDelivery(db, CONFIG).run(morning.now())

    assert page.status_code == 200
    assert "<h1>Ticketdrucker</h1>" in page.text
    assert f'<th scope="row">{ticket["number"]}</th>' in page.text
    assert 'data-online="false"' in page.text  # the printer cut the ticket off
    assert clicked.status_code == 303
    assert f"Die Wartenummer {ticket['number']} wird noch einmal gedruckt." in shown.text
    assert "Keine Wartenummer muss noch einmal gedruckt werden." in shown.text
    assert [read_paper(p).has(ticket["number"]) for p in printer.received] == [True]


async def test_the_printers_page_without_the_csrf_token_changes_nothing(
    db, client, signed_in, office, printer, morning
):
    await a_cut_off_ticket(db, client, office, printer, morning)
    async with db.read() as session:
        [job] = list(await session.scalars(select(PrintJob)))

    answer = await signed_in.post(f"/admin/printers/jobs/{job.id}/reprint", data={})

    assert answer.status_code == 403
    async with db.read() as session:
        assert len(list(await session.scalars(select(PrintJob)))) == 1


async def test_the_printers_page_speaks_english_and_shows_online_and_paper(
    db, client, signed_in, office, printer, morning
):
    await draw(client, office.kiosk_a)
    await PrintDelivery(db, CONFIG).run(morning.now())

    page = await signed_in.get("/admin/printers?lang=en")

    assert "<h1>Ticket printers</h1>" in page.text
    row = re.search(r'<tr data-printer="drucker-a">.*?</tr>', page.text, re.S)[0]
    assert re.search(r'data-online="true">\s*online\s*<', row)
    assert "not reported" in row  # a network printer does not say how much paper it has
