"""Every protected route: 401 without credentials, 403 with the wrong role or location."""

from __future__ import annotations

import pytest

from aufruf.auth.service import create_token
from tests.builders import a_location

ROUTES = [
    ("POST", "/api/v1/locations/amt/tickets", {"service": "pass"}),
    ("POST", "/api/v1/locations/amt/checkins", {"code": "ABCDEF"}),
    ("GET", "/api/v1/locations/amt/queue", None),
    ("GET", "/api/v1/locations/amt/counters", None),
    ("GET", "/api/v1/locations/amt/events", None),
    *[
        (
            "POST",
            f"/api/v1/counters/amt-1/{action}",
            {"service": "pass"} if action == "transfer" else None,
        )
        for action in (
            "call-next",
            "recall",
            "start",
            "done",
            "no-show",
            "transfer",
            "pause",
            "resume",
            "open",
            "close",
            "sit",
            "leave",
        )
    ],
    ("POST", "/api/v1/tickets/1/priority", {"level": 1}),
    ("POST", "/api/v1/tickets/1/reactivate", None),
    ("POST", "/api/v1/tickets/1/cancel", None),
    ("GET", "/api/v1/me", None),
]


@pytest.fixture
async def tokens(db, clock):
    await a_location(db, "amt")
    await a_location(db, "other")
    async with db.write() as session:
        display = await create_token(session, clock.now(), role="display", location="amt")
        clerk_elsewhere = await create_token(session, clock.now(), role="clerk", location="other")
    return {"display": display.token, "clerk_elsewhere": clerk_elsewhere.token}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_without_credentials_the_answer_is_401(client, tokens, method, path, body):
    response = await client.request(method, path, json=body)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [r for r in ROUTES if r[1] != "/api/v1/me"],
    ids=[f"{m} {p}" for m, p, _ in ROUTES if p != "/api/v1/me"],
)
@pytest.mark.parametrize("who", ["display", "clerk_elsewhere"])
async def test_with_the_wrong_role_or_location_the_answer_is_403(
    client, db, tokens, who, method, path, body
):
    if path.startswith("/api/v1/tickets/1/"):
        # a ticket must exist for its location to be known
        from datetime import UTC, datetime

        from aufruf.queue import service as queue

        async with db.write() as session:
            await queue.draw_ticket(
                session,
                queue.Change(),
                datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
                "amt",
                ["pass"],
                source="staff",
                actor="t",
            )
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
