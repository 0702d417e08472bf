"""Booking is limited per client address and minute; proxies are believed only when trusted."""

from __future__ import annotations

import ipaddress
import uuid

import httpx
import pytest

from aufruf.app import create_app
from aufruf.ratelimit import client_address
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import SECRET, need_redis, running


def a_booking(n: int) -> dict:
    return {
        "location": "amt",
        "services": ["pass"],
        "start": f"2026-11-24T{8 + n // 6:02d}:{(n % 6) * 10:02d}:00+01:00",
        "name": "Erika Mustermann",
        "email": f"person{n}@example.org",
    }


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def limit_store(request) -> str | None:
    if request.param == "redis":
        return need_redis()
    return None


async def _client(db, clock, redis_url, limit=3, trusted=""):
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        booking_rate_limit=limit,
        redis_url=redis_url,
        trusted_proxies=Settings.from_env(
            {"AUFRUF_SECRET_KEY": SECRET, "AUFRUF_TRUSTED_PROXIES": trusted}
        ).trusted_proxies,
    )
    return create_app(settings, db=db, clock=clock)


async def test_the_fourth_booking_in_a_minute_is_429_with_retry_after(db, clock, limit_store):
    await a_location(db, places=3)
    app = await _client(db, clock, limit_store, limit=3)
    # an address of its own, so a shared Redis holds no earlier hits for it
    address = str(ipaddress.IPv6Address(uuid.uuid4().int))
    transport = httpx.ASGITransport(app=app, client=(address, 1234))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = [await client.post("/api/v1/appointments", json=a_booking(n)) for n in range(4)]
        assert [a.status_code for a in answers[:3]] == [201, 201, 201]
        assert answers[3].status_code == 429
        assert answers[3].json()["reason"] == "rate_limited"
        assert int(answers[3].headers["retry-after"]) == 60
        clock.advance(seconds=60)
        later = await client.post("/api/v1/appointments", json=a_booking(5))
        assert later.status_code != 429


async def test_limit_zero_switches_it_off(db, clock):
    await a_location(db, places=3)
    app = await _client(db, clock, None, limit=0)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 1234))
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answers = [await client.post("/api/v1/appointments", json=a_booking(n)) for n in range(12)]
    assert 429 not in {a.status_code for a in answers}


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address("203.0.113.9", "198.51.100.7", proxies) == "203.0.113.9"
    assert client_address("10.0.0.2", "198.51.100.7", proxies) == "198.51.100.7"
    # a client cannot hide behind a forged entry: the rightmost untrusted hop counts
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert client_address("10.0.0.2", None, proxies) == "10.0.0.2"
    assert client_address("203.0.113.9", "198.51.100.7", ()) == "203.0.113.9"
