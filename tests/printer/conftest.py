"""A location with two kiosks, each with a printer of its own, and the tokens to use them."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from aufruf.auth import service as auth
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk, Location, Printer, Service
from tests.builders import a_location

LOCATION = "amt"
OFFICE_NAME = "Bürgeramt Süd"
SERVICE_NAME = "Reisepass (37 €)"
PUBLIC = "https://termine.stadt.example"


@dataclass(frozen=True)
class Office:
    location: str
    kiosk_a: str  # token of the kiosk at the entrance, printing on "drucker-a"
    kiosk_b: str  # token of the kiosk upstairs, printing on "drucker-b"
    clerk: str  # a clerk token of the location
    printer_a: str  # the printer token of "drucker-a"
    printer_b: str


async def a_token(db: Database, clock: FixedClock, role: str, **binding) -> str:
    async with db.write() as session:
        return (await auth.create_token(session, clock.now(), role=role, **binding)).token


async def a_printing_office(
    db: Database,
    clock: FixedClock,
    *,
    connection: str = "agent",
    target_a: str | None = None,
    target_b: str | None = None,
    width_a: int = 80,
    width_b: int = 58,
    qr_mode: str = "native",
) -> Office:
    await a_location(db, LOCATION, hours="07:00-18:00", services={"pass": 10, "melde": 5})
    await a_location(db, "other", services={"other": 10})
    async with db.write() as session:
        (await session.get(Location, LOCATION)).name = {"de": OFFICE_NAME, "en": "Citizens' office"}
        (await session.get(Service, "pass")).name = {"de": SERVICE_NAME, "en": "Passport"}
        for printer_id, target, width in (
            ("drucker-a", target_a, width_a),
            ("drucker-b", target_b, width_b),
        ):
            session.add(
                Printer(
                    id=printer_id,
                    location_id=LOCATION,
                    name=f"Drucker {printer_id[-1].upper()}",
                    paper_width_mm=width,
                    qr_mode=qr_mode,
                    connection=connection,
                    target=target,
                )
            )
        session.add(Printer(id="other-drucker", location_id="other", name="Drucker"))
        await session.flush()
        session.add(
            Kiosk(id="kiosk-a", location_id=LOCATION, name="Eingang", printer_id="drucker-a")
        )
        session.add(Kiosk(id="kiosk-b", location_id=LOCATION, name="Oben", printer_id="drucker-b"))
    return Office(
        location=LOCATION,
        kiosk_a=await a_token(db, clock, "kiosk", location=LOCATION, kiosk="kiosk-a"),
        kiosk_b=await a_token(db, clock, "kiosk", location=LOCATION, kiosk="kiosk-b"),
        clerk=await a_token(db, clock, "clerk", location=LOCATION),
        printer_a=await a_token(db, clock, "printer", location=LOCATION, printer="drucker-a"),
        printer_b=await a_token(db, clock, "printer", location=LOCATION, printer="drucker-b"),
    )


@pytest.fixture
def morning(clock: FixedClock) -> FixedClock:
    """09:00 in Berlin on a working Monday: the office is open."""
    clock.advance(hours=2)
    return clock


async def draw(
    client: httpx.AsyncClient, token: str, services=("pass",), **extra
) -> httpx.Response:
    return await client.post(
        f"/api/v1/locations/{LOCATION}/tickets",
        json={"services": list(services), **extra},
        headers={"Authorization": f"Bearer {token}"},
    )
