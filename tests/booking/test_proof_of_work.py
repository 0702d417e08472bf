"""Proof of work against bots (ALTCHA) when AUFRUF_POW_DIFFICULTY > 0: a solved challenge
confirms a booking at once, on the site and in the API; none is accepted twice or after it
expired; without one (no JavaScript) the booking still works and waits for the e-mail link."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import altcha
import httpx
import pytest
from sqlalchemy import select

from aufruf.booking.model import Appointment, UsedProof
from aufruf.booking.proof import ProofOfWork, accept_proof
from aufruf.notifications.model import OutboxMessage
from tests.builders import a_location
from tests.conftest import running

DIFFICULTY = 2000


@pytest.fixture
async def guarded(db, settings, clock) -> AsyncIterator[httpx.AsyncClient]:
    """The app asking for a proof of work."""
    from aufruf.app import create_app

    app = create_app(replace(settings, pow_difficulty=DIFFICULTY), db=db, clock=clock)
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def solved(challenge: dict) -> str:
    """What the browser's widget sends: the challenge and the counter found for it."""
    issued = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(issued)
    return altcha.Payload(issued, solution).to_base64()


async def a_proof(client) -> str:
    answer = await client.get("/api/v1/proof-challenge")
    assert answer.status_code == 200
    return solved(answer.json())


def booking(start: str = "2026-11-24T09:00:00+01:00", **fields) -> dict:
    return {
        "location": "amt",
        "services": ["pass"],
        "start": start,
        "name": "Erika Mustermann",
        "email": "erika@example.org",
        **fields,
    }


async def statuses(db) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(Appointment.status).order_by(Appointment.id)))


async def test_no_challenge_is_handed_out_while_it_is_off(db, client):
    response = await client.get("/api/v1/proof-challenge")

    assert response.status_code == 404


async def test_a_challenge_is_signed_and_asks_for_work(db, guarded):
    challenge = (await guarded.get("/api/v1/proof-challenge")).json()

    assert challenge["parameters"]["algorithm"] == "SHA-256"
    assert len(challenge["parameters"]["keyPrefix"]) == 32  # one exact counter to find
    assert len(challenge["signature"]) == 64


async def test_a_solved_proof_confirms_at_once_and_is_never_accepted_twice(db, guarded):
    await a_location(db, places=2)
    proof = await a_proof(guarded)

    first = await guarded.post("/api/v1/appointments", json=booking(proof=proof))
    again = await guarded.post(
        "/api/v1/appointments", json=booking(proof=proof, email="max@example.org")
    )

    assert first.status_code == 201 and first.json()["status"] == "confirmed"
    assert again.status_code == 201 and again.json()["status"] == "pending"
    async with db.read() as session:
        assert len((await session.scalars(select(UsedProof))).all()) == 1


async def test_without_a_proof_the_booking_waits_for_the_email_link(db, guarded):
    await a_location(db)

    response = await guarded.post("/api/v1/appointments", json=booking())

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    async with db.read() as session:
        kinds = list(await session.scalars(select(OutboxMessage.kind)))
    assert kinds == ["booking_pending"]


async def test_an_expired_or_forged_proof_is_no_proof(db, guarded, clock):
    await a_location(db, places=3)
    late = await a_proof(guarded)
    clock.advance(minutes=31)
    challenge = (await guarded.get("/api/v1/proof-challenge")).json()
    forged = "bm90IGEgcHJvb2Y="  # base64 of "not a proof"

    expired = await guarded.post(
        "/api/v1/appointments", json=booking("2026-11-24T10:00:00+01:00", proof=late)
    )
    damaged = await guarded.post(
        "/api/v1/appointments",
        json=booking("2026-11-24T10:10:00+01:00", proof=forged, email="max@example.org"),
    )
    tampered = await guarded.post(
        "/api/v1/appointments",
        json=booking(
            "2026-11-24T10:20:00+01:00",
            proof=tampered_proof(challenge),
            email="eva@example.org",
        ),
    )

    assert [r.status_code for r in (expired, damaged, tampered)] == [201, 201, 201]
    assert await statuses(db) == ["pending", "pending", "pending"]


def tampered_proof(challenge: dict) -> str:
    """A solution of the challenge with its parameters changed after signing."""
    issued = altcha.Challenge.from_dict(challenge)
    issued.parameters.key_prefix = "0"  # one hex digit: solved in a few tries
    solution = altcha.solve_challenge(issued)
    return altcha.Payload(issued, solution).to_base64()


async def test_the_booking_form_carries_the_widget_and_its_proof_counts(db, guarded):
    await a_location(db, places=2)
    page = (
        await guarded.get(
            "/details?authority=amt&service=pass&location=amt"
            "&start=2026-11-24T09%3A00%3A00%2B01%3A00"
        )
    ).text
    form = {
        "authority": "amt",
        "service": "pass",
        "location": "amt",
        "start": "2026-11-24T09:00:00+01:00",
        "name": "Erika Mustermann",
        "email": "erika@example.org",
        "consent": "1",
    }

    assert '<script type="module" src="/static/altcha.min.js"></script>' in page
    assert '<altcha-widget challenge="' in page and 'name="altcha"' in page
    script = await guarded.get("/static/altcha.min.js")
    assert script.status_code == 200 and "altcha-widget" in script.text
    challenge = html.unescape(re.search(r'<altcha-widget challenge="([^"]+)"', page).group(1))
    with_proof = await guarded.post("/book", data={**form, "altcha": solved(json.loads(challenge))})
    without = await guarded.post("/book", data={**form, "email": "max@example.org"})

    assert with_proof.status_code == 303 and without.status_code == 303
    assert await statuses(db) == ["confirmed", "pending"]
    waiting = (await guarded.get(without.headers["location"])).text
    assert "Bitte bestätigen Sie Ihren Termin" in waiting


async def test_no_widget_while_it_is_off(db, client):
    await a_location(db)

    page = (
        await client.get(
            "/details?authority=amt&service=pass&location=amt"
            "&start=2026-11-24T09%3A00%3A00%2B01%3A00"
        )
    ).text

    assert "altcha" not in page


async def test_a_proof_sent_many_times_at_once_counts_once(db, settings, clock):
    pow = ProofOfWork.from_settings(replace(settings, pow_difficulty=DIFFICULTY))
    proof = solved(pow.challenge(clock.now()))

    # eight concurrent transactions (on PostgreSQL really at once) race for one proof
    accepted = await asyncio.gather(*(accept_proof(db, pow, proof, clock.now()) for _ in range(8)))

    assert sorted(accepted) == [False] * 7 + [True]
