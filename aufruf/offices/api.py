"""Public directory endpoints: locations and services."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import QueryParameter

from aufruf.deps import DatabaseDep
from aufruf.offices import service

Language = Annotated[
    str,
    QueryParameter(name="lang", pattern=r"^[a-z]{2}$", description="Language of names"),
]


class LocationOut(msgspec.Struct):
    id: str
    name: str
    authority: str
    address: str
    timezone: str
    services: list[str]


class ServiceOut(msgspec.Struct):
    id: str
    name: str
    authority: str
    duration_minutes: int
    max_quantity: int
    bring: str
    note: str = ""


class DirectoryController(Controller):
    path = "/api/v1"
    tags = ["directory"]

    @get("/locations", summary="Locations with the services they offer")
    async def locations(self, db: DatabaseDep, lang: Language = "de") -> list[LocationOut]:
        async with db.read() as session:
            rows = await service.list_locations(session, lang)
        return [LocationOut(**row.__dict__) for row in rows]

    @get("/services", summary="Services (concerns) with duration and maximum quantity")
    async def services(self, db: DatabaseDep, lang: Language = "de") -> list[ServiceOut]:
        async with db.read() as session:
            rows = await service.list_services(session, lang)
        return [ServiceOut(**row.__dict__) for row in rows]
