"""One rule says whether a printer is reachable, and the staff page, the printers API (read by
the desk) and the kiosk all tell it alike: a printer reached through an agent is online while
its agent keeps in touch; a printer the server reaches itself is judged by its last attempt,
however long ago, and one never tried is not known to be unreachable."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from aufruf.auth import passwords
from aufruf.auth.service import create_user
from aufruf.kiosk.paper import paper_ticket_coming
from aufruf.printer import status as printer_status
from tests.printer.conftest import LOCATION, a_printing_office, draw

PASSWORD = "correct horse battery"

CASES = {
    # case: (connection, what was recorded and how long ago, reachable as told to everyone)
    "agent heard of just now": ("agent", ({"online": True}, timedelta(0)), "online"),
    "agent silent for two minutes": ("agent", ({"online": True}, timedelta(minutes=2)), "offline"),
    "agent says its printer is off": ("agent", ({"online": False}, timedelta(0)), "offline"),
    "agent never connected": ("agent", None, "offline"),
    "direct printer never tried": ("direct", None, "unknown"),
    "direct printer printed an hour ago": (
        "direct",
        ({"online": True}, timedelta(hours=1)),
        "online",
    ),
    "direct printer refused an hour ago": (
        "direct",
        ({"online": False, "problem": "cannot reach the printer"}, timedelta(hours=1)),
        "offline",
    ),
}
PAGE_WORDS = {
    "online": "erreichbar",
    "offline": "nicht erreichbar",
    "unknown": "noch nicht angesteuert",
}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


async def _signed_in(client, db, morning) -> None:
    async with db.write() as session:
        await create_user(session, morning.now(), "anna", PASSWORD, "clerk", [LOCATION])
    page = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]*)"', page.text)[1]
    answer = await client.post(
        "/login", data={"_csrf_token": token, "username": "anna", "password": PASSWORD}
    )
    assert answer.status_code == 303


@pytest.mark.parametrize("case", list(CASES))
async def test_the_staff_page_the_api_and_the_kiosk_tell_a_printer_alike(db, client, morning, case):
    connection, recorded, expected = CASES[case]
    office = await a_printing_office(
        db, morning, connection=connection, target_a="dummy:/dev/null", target_b="dummy:/dev/null"
    )
    if recorded is not None:
        state, ago = recorded
        async with db.write() as session:
            await printer_status.note_printer(session, "drucker-a", morning.now() - ago, **state)
    ticket = (await draw(client, office.kiosk_a)).json()
    async with db.read() as session:
        on_paper = await paper_ticket_coming(session, ticket["id"], LOCATION, morning.now())
    listed = await client.get(
        f"/api/v1/locations/{LOCATION}/printers",
        headers={"Authorization": f"Bearer {office.clerk}"},
    )
    await _signed_in(client, db, morning)
    page = await client.get("/admin/printers")

    [entrance] = [p for p in listed.json() if p["id"] == "drucker-a"]
    assert (entrance["reachable"], entrance["online"]) == (expected, expected != "offline")
    row = re.search(r'<tr data-printer="drucker-a">.*?</tr>', page.text, re.S)[0]
    shown = re.search(r'data-reachable="(\w+)" data-online="(\w+)">\s*([^<]+?)\s*<', row)
    assert shown.groups() == (expected, str(expected != "offline").lower(), PAGE_WORDS[expected])
    assert on_paper is (expected != "offline")


async def test_a_direct_printer_out_of_paper_gives_no_paper_at_the_kiosk(db, client, morning):
    office = await a_printing_office(db, morning, connection="direct", target_a="dummy:/dev/null")
    async with db.write() as session:
        await printer_status.note_printer(
            session, "drucker-a", morning.now() - timedelta(hours=1), online=True, paper="out"
        )
    ticket = (await draw(client, office.kiosk_a)).json()

    async with db.read() as session:
        [state] = [
            s
            for s in await printer_status.printer_states(session, [LOCATION], morning.now())
            if s.id == "drucker-a"
        ]
        on_paper = await paper_ticket_coming(session, ticket["id"], LOCATION, morning.now())

    assert (state.reachable, state.paper, on_paper) == ("online", "out", False)
