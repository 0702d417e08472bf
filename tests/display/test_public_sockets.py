"""`/ws/locations/{L}/display` and `/ws/tickets/{token}` on a real server: the wall display
gets a snapshot and then every event in seq order (gaps read from the database, doubles
dropped); the phone view gets its ticket whenever it changes."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect

from aufruf.queue import service as queue_service
from tests.display import test_counter_socket as counter_tests
from tests.display.live import SilentLink, live_server
from tests.display.test_counter_socket import TIMEOUT, bearer, close_code, draw

# the counter socket's fixtures: an office with tokens, a live server, an HTTP client
office, server, http = counter_tests.office, counter_tests.server, counter_tests.http


@asynccontextmanager
async def socket_at(base: str, path: str) -> AsyncIterator[ClientConnection]:
    url = base.replace("http://", "ws://") + path
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        yield ws


async def next_message(ws: ClientConnection, wanted: Callable[[dict], bool] = lambda _: True):
    """The next message that satisfies `wanted` (pings skipped)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] != "ping" and wanted(message):
                return message


async def call_next(http, office, counter: str = "amt-1") -> dict:
    clerk = bearer(office[f"clerk-{counter[-1]}"])
    assert (await http.post(f"/api/v1/counters/{counter}/open", headers=clerk)).status_code == 200
    answer = await http.post(f"/api/v1/counters/{counter}/call-next", headers=clerk)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_display_snapshot_then_a_call_in_seq_order(server, http, office):
    await draw(http, office, "pass")
    await draw(http, office, "other")
    async with socket_at(server, "/ws/locations/amt/display") as ws:
        snapshot = await next_message(ws)
        assert snapshot == {
            "type": "snapshot",
            "seq": 2,
            "called": [],
            "waiting": {"other": 1, "pass": 1},
        }
        called = await call_next(http, office)
        messages = [await next_message(ws) for _ in range(2)]  # "opened", then "called"

    assert [m["seq"] for m in messages] == [3, 4]
    assert messages[0]["type"] == "waiting"
    call = messages[1]
    assert call["type"] == "called"
    assert (call["number"], call["counter"]) == (called["number"], "Platz 1")
    assert call["waiting"] == {"other": 1}
    assert "token" not in json.dumps(messages)

    async with socket_at(server, "/ws/locations/amt/display") as ws:
        again = await next_message(ws)
    assert again["seq"] == 4
    assert again["called"] == [{"number": "A001", "counter": "Platz 1", "at": call["at"]}]
    assert again["waiting"] == {"other": 1}


async def test_display_of_an_unknown_location_is_refused(server):
    async with socket_at(server, "/ws/locations/nowhere/display") as ws:
        assert await close_code(ws) == 4404


async def test_a_display_token_registers_the_device(server, http, office):
    staff = bearer(office["clerk-1"])
    assert (await http.get("/api/v1/locations/amt/displays", headers=staff)).json() == []
    async with socket_at(server, f"/ws/locations/amt/display?token={office['display']}") as ws:
        await next_message(ws)
        online = (await http.get("/api/v1/locations/amt/displays", headers=staff)).json()
        assert [d["connections"] for d in online] == [1]
    assert (await http.get("/api/v1/locations/amt/displays", headers=staff)).status_code == 200
    assert (await http.get("/api/v1/locations/amt/displays")).status_code == 401


async def test_a_ping_gets_a_pong_on_the_display(server, office):
    async with socket_at(server, "/ws/locations/amt/display") as ws:
        await next_message(ws)
        await ws.send(json.dumps({"type": "ping"}))
        assert await next_message(ws) == {"type": "pong"}


async def test_ticket_socket_follows_people_ahead_and_the_call(server, http, office):
    first = await draw(http, office, "pass")
    second = await draw(http, office, "pass")
    async with socket_at(server, f"/ws/tickets/{second['token']}") as ws:
        start = await next_message(ws)
        assert start["type"] == "ticket"
        assert (start["number"], start["status"], start["people_ahead"]) == ("A002", "waiting", 1)
        assert "token" not in start and "status_url" not in start

        await call_next(http, office)  # calls the first
        moved = await next_message(ws, lambda m: m["people_ahead"] == 0)
        assert moved["status"] == "waiting"

        await call_next(http, office, "amt-2")
        mine = await next_message(ws, lambda m: m["status"] == "called")
    assert mine["counter"] == "Platz 2"
    assert mine["people_ahead"] is None
    assert first["number"] == "A001"


async def test_ticket_socket_sends_only_changes_and_knows_the_end(server, http, office):
    ticket = await draw(http, office, "pass")
    async with socket_at(server, f"/ws/tickets/{ticket['token']}") as ws:
        sent = [await next_message(ws)]
        await draw(http, office, "other")  # changes nothing of this ticket
        await call_next(http, office)  # opens the counter (the estimate changes), calls it
        while sent[-1]["status"] != "called":
            sent.append(await next_message(ws))
        clerk = bearer(office["clerk-1"])
        assert (await http.post("/api/v1/counters/amt-1/done", headers=clerk)).status_code == 200
        done = await next_message(ws)
    assert all(a != b for a, b in itertools.pairwise(sent))  # only changes are sent
    assert len(sent) <= 3
    assert sent[-1]["counter"] == "Platz 1"
    assert done["status"] == "done"
    assert done["counter"] is None


async def test_a_wrong_ticket_token_closes_4404(server):
    async with socket_at(server, "/ws/tickets/not-a-token") as ws:
        assert await close_code(ws) == 4404


async def sessions_opened(db) -> int | None:
    """How many sessions PostgreSQL has opened to the test database so far (None on SQLite)."""
    if db.is_sqlite:
        return None
    async with db.read() as session:
        return await session.scalar(
            text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        )


async def test_a_crowd_reconnecting_at_once_is_admitted_through_a_few_connections(
    server, office, db, clock, settings
):
    """After a restart every phone and display reconnects within seconds: each gets its
    snapshot, and on PostgreSQL the crowd does not have the server open a connection each (a
    session per socket had the engine's pool open and close hundreds; a PostgreSQL allows
    100 by default, shared by every instance)."""
    phones, displays = 80, 20
    change = queue_service.Change()
    async with db.write() as session:
        drawn = [
            await queue_service.draw_ticket(
                session, change, clock.now(), "amt", ["pass"], source="staff", actor="test"
            )
            for _ in range(phones)
        ]
    links = [f"/ws/tickets/{queue_service.ticket_token(settings.secret_key, t)}" for t in drawn]
    before = await sessions_opened(db)

    async def first_of(path: str) -> dict:
        async with socket_at(server, path) as ws:
            return await next_message(ws)

    paths = links + ["/ws/locations/amt/display"] * displays
    firsts = await asyncio.gather(*map(first_of, paths))
    again = await asyncio.gather(*map(first_of, paths))  # and once more, as after a blip
    opened = await sessions_opened(db)

    assert [m["people_ahead"] for m in firsts[:phones]] == list(range(phones))
    assert [m["number"] for m in firsts[:phones]] == [t.number for t in drawn]
    assert all(
        m["type"] == "snapshot" and m["waiting"] == {"pass": phones} for m in firsts[phones:]
    )
    assert again == firsts
    if before is not None:
        # the few plain connections that admit them and read the shared views (at most 16
        # and 4), the channel's two, and the one that read these figures
        assert opened - before <= 24, f"{opened - before} PostgreSQL sessions for 100 sockets twice"


async def test_a_ticket_link_signed_with_another_key_closes_4404(server, office, db, clock):
    change = queue_service.Change()
    async with db.write() as session:
        ticket = await queue_service.draw_ticket(
            session, change, clock.now(), "amt", ["pass"], source="staff", actor="test"
        )
    forged = queue_service.ticket_token("another-secret-key-0123456789-abcdefghij", ticket)
    async with socket_at(server, f"/ws/tickets/{forged}") as ws:
        assert await close_code(ws) == 4404


async def test_a_display_whose_link_falls_silent_is_let_go(office, settings, clock):
    """Nothing closes the socket, the link just carries nothing: the server's pings go
    unanswered, it lets the display go, and staff no longer see the device online."""
    with live_server(settings, clock, ping_seconds=0.2) as base:
        link = SilentLink(int(base.rsplit(":", 1)[1]))
        staff = bearer(office["clerk-1"])
        try:
            async with (
                httpx.AsyncClient(base_url=base, timeout=TIMEOUT, trust_env=False) as http,
                socket_at(
                    f"http://127.0.0.1:{link.port}",
                    f"/ws/locations/amt/display?token={office['display']}",
                ) as ws,
            ):

                async def connections() -> list[int]:
                    listed = await http.get("/api/v1/locations/amt/displays", headers=staff)
                    return [d["connections"] for d in listed.json()]

                await next_message(ws)
                assert await connections() == [1]
                with link.silent():
                    async with asyncio.timeout(TIMEOUT):
                        while True:  # polling the staff list, not timing it
                            if await connections() == []:
                                break
                            await asyncio.sleep(0.05)
        finally:
            link.close()
