"""Fixtures for staff sign-in and tokens: a location, a clerk, browsers at given addresses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from litestar import MediaType, get, post
from litestar.params import FromPath

from aufruf.auth import passwords, service
from aufruf.auth.guards import PAGE_EXCEPTION_HANDLERS, ActorDep, requires
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk, Printer
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import running

CLERK_PASSWORD = "correct horse battery"
DESK = "198.51.100.10"  # the clerk's usual address


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with its cheapest parameters: the tests are about the rules, not the cost."""
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(CHEAPEST))


async def a_directory(db: Database) -> str:
    """Location "amt" with three counters, a kiosk and a printer; and location "other"."""
    await a_location(db, "amt")
    await a_location(db, "other")
    async with db.write() as session:
        session.add(Printer(id="amt-printer", location_id="amt", name="Drucker"))
        await session.flush()
        session.add(
            Kiosk(id="amt-kiosk", location_id="amt", name="Kiosk", printer_id="amt-printer")
        )
    return "amt"


@pytest.fixture
async def location(db: Database) -> str:
    return await a_directory(db)


async def a_user(
    db: Database,
    clock: FixedClock,
    username: str,
    role: str = "clerk",
    locations: tuple[str, ...] = ("amt",),
    password: str = CLERK_PASSWORD,
) -> str:
    async with db.write() as session:
        await service.create_user(session, clock.now(), username, password, role, list(locations))
    return username


async def a_token(db: Database, clock: FixedClock, role: str, **binding: str | None) -> str:
    async with db.write() as session:
        new = await service.create_token(session, clock.now(), role=role, **binding)
    return new.token


@pytest.fixture
async def clerk(db: Database, clock: FixedClock, location: str) -> str:
    return await a_user(db, clock, "anna")


def stand_in_routes() -> list:
    """Routes that stand in for the protected routes of later issues (new ones per app)."""

    @get("/test/whoami", sync_to_thread=False)
    def whoami_get(actor: ActorDep) -> dict:
        return {"name": actor.name, "csrf_ok": actor.csrf_ok}

    @post("/test/whoami", sync_to_thread=False)
    def whoami_post(actor: ActorDep) -> dict:
        return {"name": actor.name, "csrf_ok": actor.csrf_ok}

    @get("/test/locations/{location_id:str}/queue", guards=[requires("queue.read")])
    async def queue_of(location_id: FromPath[str], actor: ActorDep) -> dict:
        return {"location": location_id, "name": actor.name}

    @get("/test/page", media_type=MediaType.HTML, exception_handlers=PAGE_EXCEPTION_HANDLERS)
    async def page(actor: ActorDep) -> str:
        return f"<p>{actor.name}</p>"

    @post("/test/page", media_type=MediaType.HTML, exception_handlers=PAGE_EXCEPTION_HANDLERS)
    async def page_form(actor: ActorDep) -> str:
        return f"<p>{actor.name}</p>"

    return [whoami_get, whoami_post, queue_of, page, page_form]


@pytest.fixture
async def app(db: Database, settings: Settings, clock: FixedClock) -> AsyncIterator:
    from aufruf.app import create_app

    application = create_app(settings, db=db, clock=clock)
    for handler in stand_in_routes():
        application.register(handler)
    async with running(application):
        yield application


Browser = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def browser(app) -> AsyncIterator[Browser]:
    """`browser(address)`: a client with its own cookies, calling from `address`."""
    opened: list[httpx.AsyncClient] = []

    def at(address: str = DESK) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(client)
        return client

    yield at
    for client in opened:
        await client.aclose()


def hidden_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name} in the page"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str, next_path: str = ""
) -> httpx.Response:
    """Open the login page and send its form, as a browser does."""
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "username": username,
            "password": password,
            "next": next_path,
        },
    )
