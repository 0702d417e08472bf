"""Authentication for routes: who is calling (`actor`), and a guard per action.

A request is authenticated by exactly one of
- `Authorization: Bearer <token>`: a device or API token (`aufruf token create`); when the
  header is there the cookie is ignored, and no CSRF token is needed;
- the staff session cookie from /login; unsafe methods (POST, PUT, PATCH, DELETE) must then
  carry the session's CSRF token, as the form field `_csrf_token` (templates:
  `{{ csrf_token() }}`) or the header `X-CSRF-Token` (pages put it in
  `<meta name="csrf-token">` for their scripts). Otherwise 403.
No credentials, or unknown, revoked or expired ones: 401 (`Unauthorized`); pages turn that
into a redirect to /login with `PAGE_EXCEPTION_HANDLERS`.

Who may do what is the table in `aufruf.auth.logic`. In a handler:

    @post("/counters/{counter_id:str}/call-next")
    async def call_next(self, counter_id: FromPath[str], actor: ActorDep, db: DatabaseDep):
        counter = ...                      # load it, 404 if unknown
        actor.require("counter", location=counter.location_id, counter=counter_id)

or, where the location is a path parameter, as a guard (it also fills `actor`):

    @get("/locations/{location_id:str}/queue", guards=[requires("queue.read")])

Websocket handlers call `socket_actor(socket, ...)` (it also takes `?token=` from devices
that cannot set headers, and checks the Origin of cookie-authenticated sockets).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect, Template
from litestar.types import Guard

from aufruf.auth import service
from aufruf.auth.logic import Actor, csrf_matches, csrf_token
from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.deps import ActorDep
from aufruf.errors import Forbidden, Unauthorized
from aufruf.ratelimit import client_address
from aufruf.settings import Settings
from aufruf.web.i18n import language_context

SESSION_COOKIE = "aufruf_session"
CSRF_FIELD = "_csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_STATE_KEY = "aufruf_actor"

__all__ = ["PAGE_EXCEPTION_HANDLERS", "ActorDep", "provide_actor", "requires", "socket_actor"]


def client_of(connection: ASGIConnection, settings: Settings) -> str:
    return client_address(
        connection.client.host if connection.client else None,
        connection.headers.get("x-forwarded-for"),
        settings.trusted_proxies,
    )


def came_over_https(connection: ASGIConnection, settings: Settings) -> bool:
    """Whether the browser talks https to us (directly, or to a trusted proxy in front)."""
    if connection.url.scheme in ("https", "wss"):
        return True
    peer = connection.client.host if connection.client else ""
    forwarded = (connection.headers.get("x-forwarded-proto") or "").split(",")[0].strip()
    if forwarded != "https":
        return False
    try:
        return any(ipaddress.ip_address(peer) in net for net in settings.trusted_proxies)
    except ValueError:
        return False


def session_csrf_token(connection: ASGIConnection) -> str:
    """The CSRF token of this browser's session ("" without one), for forms and scripts."""
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        return ""
    return csrf_token(connection.app.state["settings"].secret_key, cookie)


def _bearer(connection: ASGIConnection) -> str | None:
    """The bearer token, None without an Authorization header; 401 for another scheme."""
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    return value.strip()


async def _given_csrf(request: Request) -> str | None:
    if token := request.headers.get(CSRF_HEADER):
        return token
    if request.content_type[0] in _FORMS:
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def has_credentials(connection: ASGIConnection) -> bool:
    """Whether the request carries a bearer token or a staff session cookie."""
    return _bearer(connection) is not None or bool(connection.cookies.get(SESSION_COOKIE))


async def authenticate(request: Request, db: Database, clock: Clock, settings: Settings) -> Actor:
    """The actor of an HTTP request, or Unauthorized / Forbidden (CSRF); once per request."""
    cached = request.state.get(_STATE_KEY)
    if cached is not None:
        return cached
    now = clock.now()
    token = _bearer(request)
    if token is not None:
        actor = await service.token_actor(db, now, token)
        if actor is None:
            raise Unauthorized("The token is unknown or has been revoked.")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized(
                "Sign in first: send 'Authorization: Bearer <token>' or a staff session cookie."
            )
        actor = await service.session_actor(db, now, cookie)
        if actor is None:
            raise Unauthorized("Your session has expired. Please sign in again.")
        ok = csrf_matches(settings.secret_key, cookie, await _given_csrf(request))
        if request.method in UNSAFE_METHODS and not ok:
            raise Forbidden(
                "The request has no valid CSRF token: a form sends the field _csrf_token, "
                "a script the header X-CSRF-Token. Reload the page and try again.",
                reason="csrf",
            )
        actor = replace(actor, csrf_ok=ok)
    request.state[_STATE_KEY] = actor
    return actor


async def provide_actor(request: Request) -> Actor:
    """The `actor` dependency (registered in aufruf.app), with the app's own objects."""
    state = request.app.state
    return await authenticate(request, state["db"], state["clock"], state["settings"])


def requires(action: str, *, location_param: str = "location_id") -> Guard:
    """A guard: the caller may do `action` at the location named by the path parameter
    `location_param` (when the route has one). Handlers may still ask for `actor`."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        state = connection.app.state
        if not isinstance(connection, Request):
            raise TypeError("requires() guards HTTP routes; websockets use socket_actor()")
        actor = await authenticate(connection, state["db"], state["clock"], state["settings"])
        location = connection.path_params.get(location_param)
        actor.require(action, location=str(location) if location is not None else None)

    return guard


async def socket_actor(
    connection: ASGIConnection, db: Database, clock: Clock, settings: Settings
) -> Actor:
    """The actor of a websocket: a bearer header, `?token=`, or a session cookie from a page
    of this site (the Origin must match, against cross-site websocket hijacking)."""
    now = clock.now()
    token = _bearer(connection) or connection.query_params.get("token")
    if token:
        actor = await service.token_actor(db, now, token)
        if actor is None:
            raise Unauthorized("The token is unknown or has been revoked.")
        return actor
    cookie = connection.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("Sign in first, or connect with a device token.")
    origin = connection.headers.get("origin")
    ours = {connection.headers.get("host"), urlsplit(settings.public_url or "").netloc}
    if origin is not None and urlsplit(origin).netloc not in ours:
        raise Forbidden("This socket may only be opened from aufruf's own pages.")
    actor = await service.session_actor(db, now, cookie)
    if actor is None:
        raise Unauthorized("Your session has expired. Please sign in again.")
    return actor


# --- pages -----------------------------------------------------------------------------------


def login_redirect(request: Request, _: Unauthorized) -> Response:
    """Pages answer 401 with a way back: the login page, returning here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if request.method != "GET" else f"/login?next={quote(here, safe='')}"
    return Redirect(target, status_code=303)


def forbidden_page(request: Request, exc: Forbidden) -> Response:
    context: dict[str, Any] = {**language_context(request), "reason": exc.reason}
    return Template("auth/forbidden.html", context=context, status_code=403)


PAGE_EXCEPTION_HANDLERS = {Unauthorized: login_redirect, Forbidden: forbidden_page}
"""For a page controller or router: `exception_handlers = PAGE_EXCEPTION_HANDLERS`."""
