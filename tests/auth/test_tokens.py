"""Device and API tokens: they authenticate, can be revoked, are stored only as a hash; 401
without credentials, 403 for the wrong role or location."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from aufruf.auth import service
from aufruf.auth.model import ApiToken
from aufruf.errors import InvalidInput
from tests.auth.conftest import CLERK_PASSWORD, a_token, a_user, sign_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_created_token_authenticates(browser, db, clock, location):
    token = await a_token(db, clock, "kiosk", location="amt", name="Kiosk Eingang")

    me = await browser().get("/api/v1/me", headers=bearer(token))

    assert me.status_code == 200
    assert me.json() == {
        "kind": "token",
        "name": "Kiosk Eingang",
        "role": "kiosk",
        "locations": ["amt"],
        "counter": None,
        "kiosk": "amt-kiosk",  # the location's default kiosk
        "printer": None,
    }


async def test_a_printer_token_belongs_to_the_locations_default_printer(db, clock, location):
    async with db.write() as session:
        new = await service.create_token(session, clock.now(), role="printer", location="amt")

    assert new.row.printer_id == "amt-printer"


async def test_a_revoked_token_gets_401(browser, db, clock, location):
    token = await a_token(db, clock, "display", location="amt")
    client = browser()
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    async with db.write() as session:
        row = await session.scalar(select(ApiToken))
        await service.revoke_token(session, row.id, clock.now())

    answer = await client.get("/api/v1/me", headers=bearer(token))

    assert answer.status_code == 401
    assert answer.json()["detail"] == "The token is unknown or has been revoked."


async def test_only_a_hash_of_the_token_is_stored(db, clock, location):
    token = await a_token(db, clock, "kiosk", location="amt")

    async with db.read() as session:
        row = await session.scalar(select(ApiToken))
    stored = [str(getattr(row, c.key)) for c in ApiToken.__table__.columns]

    assert not any(token in value for value in stored)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:6] and len(token) >= 43  # 256 random bits


async def test_use_is_recorded(browser, db, clock, location):
    token = await a_token(db, clock, "display", location="amt")
    clock.advance(minutes=5)

    await browser().get("/api/v1/me", headers=bearer(token))

    async with db.read() as session:
        row = await session.scalar(select(ApiToken))
    assert row.last_used_at == clock.now()


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("made-up"), {"Authorization": "Basic YW5uYTpwdw=="}, {"Authorization": "Bearer"}],
    ids=["none", "unknown token", "basic", "empty bearer"],
)
async def test_without_valid_credentials_the_api_answers_401(browser, location, headers):
    answer = await browser().get("/api/v1/me", headers=headers)

    assert answer.status_code == 401
    assert set(answer.json()) >= {"status_code", "detail"}


async def test_the_wrong_role_is_403(browser, db, clock, location):
    token = await a_token(db, clock, "kiosk", location="amt")

    answer = await browser().get("/test/locations/amt/queue", headers=bearer(token))

    assert answer.status_code == 403
    assert answer.json()["detail"] == "The role kiosk may not read the queue."


async def test_the_wrong_location_is_403(browser, db, clock, location):
    token = await a_token(db, clock, "clerk", location="amt")
    client = browser()

    ours = await client.get("/test/locations/amt/queue", headers=bearer(token))
    theirs = await client.get("/test/locations/other/queue", headers=bearer(token))

    assert ours.status_code == 200
    assert theirs.status_code == 403
    assert theirs.json()["detail"] == "This token is not allowed at location other."


async def test_a_clerk_account_is_bound_to_its_locations_and_an_unbound_admin_to_none(
    browser, db, clock, clerk
):
    await a_user(db, clock, "chef", role="admin", locations=())
    clerk_desk, admin_desk = browser(), browser()
    await sign_in(clerk_desk, "anna", CLERK_PASSWORD)
    await sign_in(admin_desk, "chef", CLERK_PASSWORD)

    assert (await clerk_desk.get("/test/locations/other/queue")).status_code == 403
    assert (await admin_desk.get("/test/locations/other/queue")).status_code == 200
    assert (await admin_desk.get("/api/v1/me")).json()["locations"] is None


@pytest.mark.parametrize(
    ("binding", "field"),
    [
        ({"role": "kiosk"}, "location"),
        ({"role": "kiosk", "location": "nowhere"}, "location"),
        ({"role": "clerk", "location": "amt", "counter": "other-1"}, "counter"),
        ({"role": "display", "location": "amt", "printer": "amt-printer"}, "printer"),
        ({"role": "kiosk", "location": "other"}, "kiosk"),  # "other" has no kiosk
        ({"role": "janitor", "location": "amt"}, "role"),
    ],
)
async def test_a_token_must_fit_the_directory(db, clock, location, binding, field):
    with pytest.raises(InvalidInput) as refused:
        async with db.write() as session:
            await service.create_token(session, clock.now(), **binding)

    assert refused.value.extra[0]["key"] == field
    async with db.read() as session:
        assert (await session.scalars(select(ApiToken))).all() == []
