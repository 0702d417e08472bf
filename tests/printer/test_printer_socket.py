"""`/ws/printer` on a real server, spoken to as an agent does: the jobs of the token's own
printer (queued before the connection, and new ones pushed as they are drawn), the answers
started / ack / failed / status, and what a disconnect leaves behind."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from aufruf.printer import status as printer_status
from aufruf.printer.model import PrintJob
from tests.display.live import live_server
from tests.printer.conftest import Office, a_printing_office, a_token, draw
from tests.printer.paper import read_paper

TIMEOUT = 10.0
PROMPTLY = 3.0  # under the socket's safety poll (5 s): a push, not a poll


@pytest.fixture
async def office(db, morning) -> Office:
    return await a_printing_office(db, morning)


@pytest.fixture
def server(office, settings, morning) -> Iterator[str]:
    with live_server(settings, morning) as base:
        yield base


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT, trust_env=False) as client:
        yield client


@asynccontextmanager
async def agent_socket(base: str, token: str) -> AsyncIterator[ClientConnection]:
    url = base.replace("http://", "ws://") + "/ws/printer"
    async with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=TIMEOUT,
        proxy=None,
    ) as ws:
        yield ws


async def next_job(ws: ClientConnection, within: float = TIMEOUT) -> dict:
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "print":
                return message
            if message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))


def number_on(message: dict) -> str:
    text = read_paper(base64.b64decode(message["escpos_base64"])).text
    return next(word for word in text.split() if word[:1] == "A")


async def job_status(db, job_id: int) -> str:
    async with db.read() as session:
        return (await session.get(PrintJob, job_id)).status


async def test_a_bad_token_or_another_role_is_turned_away(server, db, morning, office):
    kiosk = office.kiosk_a
    for token, code in (("not-a-token", 4401), (kiosk, 4403)):
        async with agent_socket(server, token) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == code


async def test_the_agent_gets_waiting_jobs_then_new_ones_as_they_are_drawn(
    server, http, db, office
):
    before = (await draw(http, office.kiosk_a)).json()
    async with agent_socket(server, office.printer_a) as ws:
        first = await next_job(ws)
        await ws.send(json.dumps({"type": "started", "job": first["job"]}))
        await ws.send(json.dumps({"type": "ack", "job": first["job"]}))
        later = (await draw(http, office.kiosk_a)).json()
        second = await next_job(ws, within=PROMPTLY)

    assert number_on(first) == before["number"]
    assert number_on(second) == later["number"]
    assert await job_status(db, first["job"]) == "printed"


async def test_an_agent_never_gets_another_printers_tickets(server, http, db, office):
    async with agent_socket(server, office.printer_b) as upstairs:
        await draw(http, office.kiosk_a)
        mine = (await draw(http, office.kiosk_b)).json()
        job = await next_job(upstairs, within=PROMPTLY)
        with pytest.raises(TimeoutError):
            await next_job(upstairs, within=1.0)

    assert number_on(job) == mine["number"]


async def test_a_refusing_printer_is_retried_and_a_cut_off_one_is_left_for_reprint(
    server, http, db, office, morning
):
    await draw(http, office.kiosk_a)
    await draw(http, office.kiosk_a)
    async with agent_socket(server, office.printer_a) as ws:
        refused, cut = await next_job(ws), await next_job(ws)
        await ws.send(json.dumps({"type": "failed", "job": refused["job"], "reason": "offline"}))
        await ws.send(json.dumps({"type": "started", "job": cut["job"]}))
        await ws.send(json.dumps({"type": "failed", "job": cut["job"], "reason": "paper jam"}))
        await ws.send(json.dumps({"type": "status", "online": True, "paper": "low"}))
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(TIMEOUT):
            while json.loads(await ws.recv())["type"] != "pong":
                pass  # answered in order: everything before the ping is recorded
        async with db.read() as session:
            retried = await session.get(PrintJob, refused["job"])
            [state] = [
                s
                for s in await printer_status.printer_states(session, None, morning.now())
                if s.id == "drucker-a"
            ]

    assert retried.status == "queued" and retried.due_at > morning.now()
    assert await job_status(db, cut["job"]) == "interrupted"
    assert (state.online, state.paper, state.interrupted) == (True, "low", 1)


async def test_a_disconnect_is_noticed_and_unstarted_jobs_go_to_the_next_connection(
    server, http, db, office, morning
):
    drawn = (await draw(http, office.kiosk_a)).json()
    async with agent_socket(server, office.printer_a) as ws:
        unstarted = await next_job(ws)
    async with asyncio.timeout(TIMEOUT):
        while True:  # the server notices the socket closing on its own schedule
            async with db.read() as session:
                [state] = [
                    s
                    for s in await printer_status.printer_states(session, None, morning.now())
                    if s.id == "drucker-a"
                ]
            if not state.online:
                break
            await asyncio.sleep(0.05)
    async with agent_socket(server, office.printer_a) as ws:
        again = await next_job(ws, within=PROMPTLY)

    assert again["job"] == unstarted["job"] and number_on(again) == drawn["number"]


async def test_a_staff_printer_token_of_a_direct_printer_is_refused(server, db, morning):
    from sqlalchemy import update

    from aufruf.offices.model import Printer

    async with db.write() as session:
        await session.execute(
            update(Printer)
            .where(Printer.id == "drucker-b")
            .values(connection="direct", target="dummy:/tmp/x")
        )
    token = await a_token(db, morning, "printer", location="amt", printer="drucker-b")
    async with agent_socket(server, token) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == 4403
    async with db.read() as session:
        assert list(await session.scalars(select(PrintJob))) == []


@pytest.mark.redis
async def test_new_jobs_reach_the_agent_through_redis_too(db, office, settings, morning):
    from dataclasses import replace

    from tests.conftest import need_redis

    with live_server(replace(settings, redis_url=need_redis()), morning) as base:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT, trust_env=False) as http:
            await draw(http, office.kiosk_a)
            async with agent_socket(base, office.printer_a) as ws:
                await next_job(ws)  # sent after the socket subscribed
                drawn = (await draw(http, office.kiosk_a)).json()
                job = await next_job(ws, within=PROMPTLY)

    assert number_on(job) == drawn["number"]


async def test_an_agent_that_stops_answering_is_taken_for_gone(db, office, settings, morning):
    from aufruf.printer import sockets

    patch = pytest.MonkeyPatch()
    patch.setattr(sockets, "HEARTBEAT_SECONDS", 0.2)
    patch.setattr(sockets, "SILENT_SECONDS", 1.0)
    try:
        with live_server(settings, morning) as base:
            async with agent_socket(base, office.printer_a) as ws:
                pings = 0
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(TIMEOUT):
                        while True:  # a hung agent: reads, never answers
                            pings += json.loads(await ws.recv())["type"] == "ping"
            async with db.read() as session:
                [state] = [
                    s
                    for s in await printer_status.printer_states(session, None, morning.now())
                    if s.id == "drucker-a"
                ]
    finally:
        patch.undo()

    assert pings >= 2
    assert state.online is False
