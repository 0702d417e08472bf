"""`/ws/counters/{C}` on a real server: the clerk's counter and its queue, live."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import delete
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from aufruf.auth import passwords
from aufruf.auth.service import create_token, create_user
from aufruf.offices.model import CounterService, Kiosk
from tests.builders import a_location
from tests.display.live import live_server

TIMEOUT = 10.0


async def a_token(db, clock, role: str, **binding: str) -> str:
    async with db.write() as session:
        return (await create_token(session, clock.now(), role=role, **binding)).token


@pytest.fixture
async def office(db, clock) -> dict[str, str]:
    """Location "amt" open now (Monday 09:00 local) with three counters; Platz 2 serves only
    "pass"; a kiosk; tokens of several roles."""
    clock.set(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    await a_location(db, services={"pass": 10, "other": 10}, counters=3)
    async with db.write() as session:
        await session.execute(
            delete(CounterService).where(
                CounterService.counter_id == "amt-2", CounterService.service_id == "other"
            )
        )
        session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
    return {
        "kiosk": await a_token(db, clock, "kiosk", location="amt"),
        "clerk-1": await a_token(db, clock, "clerk", location="amt", counter="amt-1"),
        "clerk-2": await a_token(db, clock, "clerk", location="amt", counter="amt-2"),
        "display": await a_token(db, clock, "display", location="amt"),
        "admin": await a_token(db, clock, "admin"),
    }


@pytest.fixture
def server(office, settings, clock) -> Iterator[str]:
    with live_server(settings, clock) as base:
        yield base


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT, trust_env=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def counter_socket(
    base: str, counter: str, *, token: str | None = None, headers: dict | None = None, query=""
) -> AsyncIterator[ClientConnection]:
    url = base.replace("http://", "ws://") + f"/ws/counters/{counter}{query}"
    async with connect(
        url,
        additional_headers={**(bearer(token) if token else {}), **(headers or {})},
        open_timeout=TIMEOUT,
        proxy=None,
    ) as ws:
        yield ws


async def next_state(ws: ClientConnection, wanted: Callable[[dict], bool] = lambda _: True) -> dict:
    """The next state message that satisfies `wanted` (pings and earlier states skipped)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "counter" and wanted(message):
                return message


async def close_code(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None, "the server did not send a close frame"
    return closed.value.rcvd.code


async def draw(http: httpx.AsyncClient, office: dict, service: str) -> dict:
    answer = await http.post(
        "/api/v1/locations/amt/tickets", json={"service": service}, headers=bearer(office["kiosk"])
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def numbers(state: dict) -> list[str]:
    return [t["number"] for t in state["queue"]]


async def test_the_snapshot_is_the_counter_and_the_queue_it_serves(server, http, office):
    first = await draw(http, office, "pass")
    await draw(http, office, "other")
    listed = (
        await http.get("/api/v1/locations/amt/counters", headers=bearer(office["clerk-2"]))
    ).json()

    async with counter_socket(server, "amt-2", token=office["clerk-2"]) as ws:
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))

    assert snapshot["type"] == "counter"
    assert snapshot["seq"] == 2
    assert snapshot["counter"] == next(c for c in listed if c["id"] == "amt-2")
    assert numbers(snapshot) == ["A001"]  # Platz 2 does not serve "other"
    assert snapshot["queue"][0]["services"] == ["pass"]
    assert snapshot["waiting"] == {"other": 1, "pass": 1}
    assert first["token"] not in json.dumps(snapshot)
    assert "status_url" not in snapshot["queue"][0]


async def test_a_drawn_ticket_and_a_call_reach_the_desk_live(server, http, office):
    clerk = bearer(office["clerk-1"])
    async with counter_socket(server, "amt-1", query=f"?token={office['clerk-1']}") as ws:
        snapshot = await next_state(ws)
        assert (snapshot["seq"], snapshot["queue"], snapshot["counter"]["current"]) == (0, [], None)

        await draw(http, office, "pass")
        drawn = await next_state(ws, lambda s: numbers(s) == ["A001"])

        assert (await http.post("/api/v1/counters/amt-1/open", headers=clerk)).status_code == 200
        called = await http.post("/api/v1/counters/amt-1/call-next", headers=clerk)
        assert called.status_code == 200, called.text
        current = await next_state(ws, lambda s: s["counter"]["current"] is not None)

    assert drawn["seq"] > snapshot["seq"]
    assert current["seq"] > drawn["seq"]
    assert current["counter"]["status"] == "open"
    assert current["counter"]["current"]["number"] == "A001"
    assert current["counter"]["current"]["status"] == "called"
    assert current["queue"] == []
    assert current["waiting"] == {}


async def test_done_clears_the_current_ticket(server, http, office):
    clerk = bearer(office["clerk-1"])
    await draw(http, office, "pass")
    await http.post("/api/v1/counters/amt-1/open", headers=clerk)
    await http.post("/api/v1/counters/amt-1/call-next", headers=clerk)
    async with counter_socket(server, "amt-1", token=office["clerk-1"]) as ws:
        snapshot = await next_state(ws)
        assert snapshot["counter"]["current"]["number"] == "A001"

        assert (await http.post("/api/v1/counters/amt-1/done", headers=clerk)).status_code == 200
        after = await next_state(ws, lambda s: s["seq"] > snapshot["seq"])

    assert after["counter"]["current"] is None


async def test_a_ping_gets_a_pong(server, office):
    async with counter_socket(server, "amt-1", token=office["clerk-1"]) as ws:
        await next_state(ws)
        await ws.send(json.dumps({"type": "ping"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))

    assert answer == {"type": "pong"}


@pytest.mark.parametrize(
    ("who", "counter", "code"),
    [
        ("display", "amt-1", 4403),
        ("kiosk", "amt-1", 4403),
        ("clerk-2", "amt-1", 4403),  # a clerk of another counter
        (None, "amt-1", 4401),
        ("admin", "nowhere-9", 4404),
    ],
)
async def test_others_are_refused(server, office, who, counter, code):
    token = office[who] if who else None
    async with counter_socket(server, counter, token=token) as ws:
        assert await close_code(ws) == code


async def test_an_unknown_token_is_refused(server, office):
    async with counter_socket(server, "amt-1", token="not-a-token") as ws:
        assert await close_code(ws) == 4401


# --- the desk's own way in: the session cookie, from a page of this site ----------------------


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name}"
    return found.group(1)


@pytest.fixture
async def signed_in(db, clock, http, office, monkeypatch) -> str:
    """The session cookie of clerk anna at "amt"."""
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))
    async with db.write() as session:
        await create_user(session, clock.now(), "anna", "correct horse battery", "clerk", ["amt"])
    page = await http.get("/login")
    answer = await http.post(
        "/login",
        data={
            "_csrf_token": _hidden(page.text, "_csrf_token"),
            "username": "anna",
            "password": "correct horse battery",
        },
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/desk"
    return http.cookies["aufruf_session"]


async def test_the_desk_connects_with_its_session_cookie(server, signed_in):
    cookie = {"Cookie": f"aufruf_session={signed_in}", "Origin": server}
    async with counter_socket(server, "amt-1", headers=cookie) as ws:
        snapshot = await next_state(ws)

    assert snapshot["counter"]["id"] == "amt-1"


async def test_a_session_cookie_from_another_site_is_refused(server, signed_in):
    cookie = {"Cookie": f"aufruf_session={signed_in}", "Origin": "https://evil.example"}
    async with counter_socket(server, "amt-1", headers=cookie) as ws:
        assert await close_code(ws) == 4403
