"""`/t/{token}` as the server renders it: the ticket's number, people ahead and wait in the
visitor's language, what each state says, leaving the queue with a confirm step (a plain form,
without JavaScript and without a session), a friendly 404 page, and the token kept out of logs
and out of the page beyond its own links."""

from __future__ import annotations

import logging
import re

import pytest

from aufruf.queue.model import Ticket
from tests.display import test_counter_socket as counter_tests
from tests.display.test_counter_socket import bearer

office = counter_tests.office  # location "amt" open now, counters, a kiosk and tokens


async def draw(client, office, service="pass") -> dict:
    answer = await client.post(
        "/api/v1/locations/amt/tickets", json={"service": service}, headers=bearer(office["kiosk"])
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def call_next(client, office, counter="amt-1") -> dict:
    clerk = bearer(office[f"clerk-{counter[-1]}"])
    assert (await client.post(f"/api/v1/counters/{counter}/open", headers=clerk)).is_success
    answer = await client.post(f"/api/v1/counters/{counter}/call-next", headers=clerk)
    assert answer.status_code == 200, answer.text
    return answer.json()


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)<', html, re.S)
    assert found, element_id
    return found[1].strip()


async def test_the_page_shows_number_people_ahead_and_wait(client, office):
    opened = await client.post("/api/v1/counters/amt-1/open", headers=bearer(office["clerk-1"]))
    assert opened.is_success
    await draw(client, office)
    mine = await draw(client, office)

    page = await client.get(f"/t/{mine['token']}")

    assert page.status_code == 200
    html = page.text
    assert '<html lang="de" dir="ltr">' in html
    assert text_of(html, "ticket-number") == "A002"
    assert text_of(html, "people-ahead") == "1"
    assert re.fullmatch(r"etwa \d+ Min\.", text_of(html, "estimated-wait"))
    assert "Bitte warten Sie." in text_of(html, "ticket-message")
    assert 'aria-live="polite"' in html
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in html
    assert "Standort amt" in html
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


async def test_the_token_appears_only_in_the_pages_own_links(client, office):
    mine = await draw(client, office)
    html = (await client.get(f"/t/{mine['token']}")).text

    places = [m.start() for m in re.finditer(re.escape(mine["token"]), html)]
    links = re.findall(r'href="(/t/[^"]*)"', html)
    assert len(places) == len(links) == 7  # six languages and "leave the queue"
    assert all(link.startswith(f"/t/{mine['token']}") for link in links)
    assert "ticket-data" in html and mine["token"] not in text_of(html, "ticket-data")


@pytest.mark.parametrize(
    ("lang", "direction", "called_text"),
    [
        ("de", "ltr", "Sie sind dran: Platz 1"),
        ("en", "ltr", "It's your turn: Platz 1"),
        ("tr", "ltr", "Sıra sizde: Platz 1"),
        ("ru", "ltr", "Ваша очередь: Platz 1"),
        ("uk", "ltr", "Ваша черга: Platz 1"),
        ("ar", "rtl", "حان دورك: Platz 1"),
    ],
)
async def test_a_called_ticket_says_where_to_go_in_six_languages(
    client, office, lang, direction, called_text
):
    mine = await draw(client, office)
    await call_next(client, office)

    html = (await client.get(f"/t/{mine['token']}", headers={"Accept-Language": lang})).text

    assert f'<html lang="{lang}" dir="{direction}">' in html
    assert text_of(html, "ticket-message").replace("&#39;", "'") == called_text
    assert re.search(r'id="leave"[^>]* hidden', html)  # too late to leave
    assert re.search(r'id="ticket-figures"[^>]* hidden', html)


async def test_done_no_show_and_closed_tickets_say_so(client, office, db):
    done, gone, closed = [await draw(client, office) for _ in range(3)]
    clerk = bearer(office["clerk-1"])
    await call_next(client, office)
    await client.post("/api/v1/counters/amt-1/done", headers=clerk)
    async with db.write() as session:
        row = await session.get(Ticket, gone["id"])
        row.status = "no_show"
        row = await session.get(Ticket, closed["id"])
        row.status = "closed"

    async def message(ticket) -> str:
        return text_of((await client.get(f"/t/{ticket['token']}?lang=en")).text, "ticket-message")

    assert await message(done) == "Your visit is finished. Thank you!"
    assert (await message(gone)).startswith("Your number was called, but you did not come.")
    closing = "The queue has closed for today. This number is no longer valid."
    assert await message(closed) == closing


async def test_leaving_the_queue_asks_first_then_works_without_a_session(client, office):
    first = await draw(client, office)
    mine = await draw(client, office)
    behind = await draw(client, office)

    confirm = await client.get(f"/t/{mine['token']}/leave")
    assert confirm.status_code == 200
    assert "Wenn Sie die Warteschlange verlassen, verfällt die Nummer A002." in confirm.text
    form = re.search(r'<form method="post" action="([^"]+)"', confirm.text)
    assert form and form[1] == f"/t/{mine['token']}/leave?lang=de"
    assert "_csrf_token" not in confirm.text  # no session: the secret address authorises it
    assert (await client.get(f"/api/v1/tickets/{mine['token']}")).json()["status"] == "waiting"

    left = await client.post(form[1], data={}, headers={"Origin": "https://elsewhere.example"})

    assert left.status_code == 303
    assert left.headers["location"] == f"/t/{mine['token']}?lang=de"
    assert (await client.get(f"/api/v1/tickets/{mine['token']}")).json()["status"] == "cancelled"
    after = (await client.get(left.headers["location"])).text
    assert text_of(after, "ticket-message").startswith("Sie haben die Warteschlange verlassen.")
    moved = (await client.get(f"/api/v1/tickets/{behind['token']}")).json()
    assert moved["people_ahead"] == 1  # only the first is still ahead
    events = await client.get("/api/v1/locations/amt/events", headers=bearer(office["clerk-1"]))
    assert events.json()[-1]["type"] == "cancelled"
    assert first["status"] == "waiting"


async def test_a_called_ticket_can_no_longer_leave(client, office):
    mine = await draw(client, office)
    await call_next(client, office)

    answer = await client.post(f"/t/{mine['token']}/leave", data={})

    assert answer.status_code == 409
    assert "Ihre Nummer wurde schon aufgerufen" in answer.text
    assert (await client.get(f"/api/v1/tickets/{mine['token']}")).json()["status"] == "called"


async def test_an_unknown_ticket_gets_a_friendly_page_in_the_visitors_language(client, office):
    for path in ("/t/not-a-token", "/t/not-a-token/leave"):
        page = await client.get(path, headers={"Accept-Language": "uk-UA,uk;q=0.9"})
        assert page.status_code == 404
        assert '<html lang="uk" dir="ltr">' in page.text
        assert "<h1>Номер не знайдено</h1>" in page.text
    posted = await client.post("/t/not-a-token/leave", headers={"Accept-Language": "ar"})
    assert posted.status_code == 404
    assert 'dir="rtl"' in posted.text


async def test_the_token_is_never_logged(client, office, caplog):
    mine = await draw(client, office)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aufruf.access"):
        await client.get(f"/t/{mine['token']}")
        await client.get(f"/t/{mine['token']}/leave")
        await client.post(f"/t/{mine['token']}/leave")

    lines = [r.getMessage() for r in caplog.records if r.name == "aufruf.access"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "GET /t/… 200",
        "GET /t/…/leave 200",
        "POST /t/…/leave 303",
    ]
    assert all(mine["token"] not in line and line.split()[1].startswith("/t/…") for line in lines)
