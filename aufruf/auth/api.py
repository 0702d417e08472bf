"""Who am I: the smallest protected endpoint, for devices and scripts to check their token.

What other routes need to authenticate is in `aufruf.auth.guards` (`ActorDep`, `requires`);
who may do what is the table in `aufruf.auth.logic`.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.openapi.spec import SecurityScheme

from aufruf.auth.guards import ActorDep
from aufruf.responses import errors

SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http",
        scheme="bearer",
        description="A device or API token from `aufruf token create`",
    ),
    "session": SecurityScheme(
        type="apiKey",
        name="aufruf_session",
        security_scheme_in="cookie",
        description="The staff session from /login; unsafe methods also need X-CSRF-Token",
    ),
}
SECURITY = [{"bearer": []}, {"session": []}]


class MeOut(msgspec.Struct):
    kind: str  # "user" | "token"
    name: str
    role: str
    locations: list[str] | None  # None: every location
    counter: str | None = None
    kiosk: str | None = None
    printer: str | None = None


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get(
        summary="The caller: its kind, role and locations",
        responses=errors(401),
        security=SECURITY,
    )
    async def me(self, actor: ActorDep) -> MeOut:
        return MeOut(
            kind=actor.kind,
            name=actor.name,
            role=actor.role,
            locations=sorted(actor.locations) if actor.locations is not None else None,
            counter=actor.counter,
            kiosk=actor.kiosk,
            printer=actor.printer,
        )
