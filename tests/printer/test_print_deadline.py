"""A ticket never prints late: a job not started within its printer's deadline after it was
queued (`print_deadline_seconds`, default 60) expires. Neither the worker nor the agent's
socket sends it afterwards, an agent that holds it but has not started it is told to drop it,
the kiosk counts it as no paper, and staff find it among the tickets to print again; the
reprint has the same deadline and prints once."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from aufruf.kiosk.paper import paper_ticket_coming
from aufruf.offices.model import Printer
from aufruf.printer.delivery import PrintDelivery
from aufruf.printer.model import PrintJob
from aufruf.printer.render import RenderConfig
from aufruf.worker import Worker
from tests.conftest import SECRET
from tests.display.live import live_server
from tests.printer import test_reprint
from tests.printer.conftest import LOCATION, PUBLIC, a_printing_office, draw
from tests.printer.paper import read_paper
from tests.printer.test_printer_socket import agent_socket, job_status, next_job, number_on

CONFIG = RenderConfig(PUBLIC, SECRET)
bearer = test_reprint.bearer
# a location whose printers the server reaches itself, and a clerk signed in to its pages
cheap_hashes = test_reprint.cheap_hashes
printer = test_reprint.printer
office = test_reprint.office
signed_in = test_reprint.signed_in
PAST_THE_DEADLINE = timedelta(seconds=61)


async def _jobs(db) -> list[PrintJob]:
    async with db.read() as session:
        return list(await session.scalars(select(PrintJob).order_by(PrintJob.id)))


async def _printers(client, clerk: str) -> dict:
    answer = await client.get(f"/api/v1/locations/{LOCATION}/printers", headers=bearer(clerk))
    assert answer.status_code == 200, answer.text
    return {p["id"]: p for p in answer.json()}


async def test_after_an_outage_a_ticket_past_its_deadline_is_not_printed_but_offered_again(
    db, client, signed_in, office, printer, morning
):
    await printer.stop()
    ticket = (await draw(client, office.kiosk_a)).json()
    delivery = PrintDelivery(db, CONFIG)
    refused = await delivery.run(morning.now())
    morning.advance(seconds=PAST_THE_DEADLINE.seconds)
    await printer.start()

    back = await delivery.run(morning.now())

    assert refused.retried == 1
    assert back.printed == 0 and printer.received == []
    [job] = await _jobs(db)
    assert job.status == "expired"
    entrance = (await _printers(client, office.clerk))["drucker-a"]
    assert (entrance["queued"], entrance["interrupted"]) == (0, 1)
    assert [(j["number"], j["status"]) for j in entrance["to_reprint"]] == [
        (ticket["number"], "expired")
    ]
    page = await signed_in.get("/admin/printers")
    assert f'<th scope="row">{ticket["number"]}</th>' in page.text
    assert "nicht rechtzeitig gedruckt" in page.text

    form = re.search(
        r'<form method="post" action="([^"]+)">\s*<input type="hidden" '
        r'name="_csrf_token" value="([^"]+)">',
        page.text,
    )
    clicked = await signed_in.post(form[1], data={"_csrf_token": form[2]})
    printed = await delivery.run(morning.now())
    later = await delivery.run(morning.now() + timedelta(minutes=5))

    assert clicked.status_code == 303
    assert (printed.printed, later.printed) == (1, 0)
    [paper] = printer.received
    assert read_paper(paper).has(ticket["number"])
    old, new = await _jobs(db)
    assert (old.status, old.reprinted_by, new.status) == ("expired", new.id, "printed")
    assert new.expires_at == morning.now() + timedelta(seconds=60)
    assert (await _printers(client, office.clerk))["drucker-a"]["to_reprint"] == []
    shown = await signed_in.get("/admin/printers")
    assert "Keine Wartenummer muss noch einmal gedruckt werden." in shown.text


async def test_the_deadline_is_the_printers_own_and_a_reprint_gets_it_too(
    db, client, office, printer, morning
):
    async with db.write() as session:
        await session.execute(
            update(Printer).where(Printer.id == "drucker-a").values(print_deadline_seconds=10)
        )
    await printer.stop()
    ticket = (await draw(client, office.kiosk_a)).json()
    delivery = PrintDelivery(db, CONFIG)
    morning.advance(seconds=9)
    await delivery.run(morning.now())
    still_queued = (await _jobs(db))[0].status
    morning.advance(seconds=2)
    await delivery.run(morning.now())
    reprint = await client.post(
        f"/api/v1/tickets/{ticket['id']}/reprint", headers=bearer(office.clerk)
    )
    morning.advance(seconds=11)  # the printer is still down: the reprint expires as well
    await printer.start()
    outcome = await delivery.run(morning.now())

    assert still_queued == "queued"
    assert reprint.status_code == 201 and reprint.json()["status"] == "queued"
    assert outcome.printed == 0 and printer.received == []
    assert [(j.kind, j.status) for j in await _jobs(db)] == [
        ("ticket", "expired"),
        ("reprint", "expired"),
    ]


async def test_the_kiosk_counts_a_job_past_its_deadline_as_no_paper(db, client, office, morning):
    ticket = (await draw(client, office.kiosk_a)).json()  # the direct printer: not tried yet
    async with db.read() as session:
        in_time = await paper_ticket_coming(session, ticket["id"], LOCATION, morning.now())
    morning.advance(seconds=PAST_THE_DEADLINE.seconds)
    async with db.read() as session:
        too_late = await paper_ticket_coming(session, ticket["id"], LOCATION, morning.now())

    assert (in_time, too_late) == (True, False)


async def test_the_worker_expires_the_jobs_of_a_printer_whose_agent_is_away(db, client, morning):
    agents = await a_printing_office(db, morning)  # printers reached through an agent
    await draw(client, agents.kiosk_a)
    worker = Worker(db, morning, printing=PrintDelivery(db, CONFIG))
    await worker.tick()
    waiting = (await _jobs(db))[0].status
    morning.advance(seconds=PAST_THE_DEADLINE.seconds)

    await worker.tick()

    [job] = await _jobs(db)
    assert (waiting, job.status, job.finished_at) == ("queued", "expired", morning.now())


async def test_the_agent_socket_never_sends_a_job_past_its_deadline(db, settings, morning):
    agents = await a_printing_office(db, morning)
    with live_server(settings, morning) as base:
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            missed = (await draw(http, agents.kiosk_a)).json()
            morning.advance(seconds=PAST_THE_DEADLINE.seconds)
            fresh = (await draw(http, agents.kiosk_a)).json()
            async with agent_socket(base, agents.printer_a) as ws:
                first = await next_job(ws)
                await ws.send(json.dumps({"type": "started", "job": first["job"]}))
                answer = await _verdict(ws)

    assert number_on(first) == fresh["number"]
    assert answer == {"type": "go", "job": first["job"]}
    [old, _] = await _jobs(db)
    assert old.ticket_id == missed["id"] and old.status == "expired"


async def test_a_job_the_agent_holds_past_its_deadline_may_not_start(db, settings, morning):
    agents = await a_printing_office(db, morning)
    with live_server(settings, morning) as base:
        async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
            async with agent_socket(base, agents.printer_a) as ws:
                await draw(http, agents.kiosk_a)
                job = await next_job(ws)
                morning.advance(seconds=PAST_THE_DEADLINE.seconds)
                await ws.send(json.dumps({"type": "started", "job": job["job"]}))
                answer = await _verdict(ws)

    assert answer == {"type": "drop", "job": job["job"], "reason": "expired"}
    assert await job_status(db, job["job"]) == "expired"


async def _verdict(ws) -> dict:
    """The server's answer to "started"."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] in ("go", "drop"):
                return message
