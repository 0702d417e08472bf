"""create_app(settings) -> Litestar: plugins, routes, channels; nothing else."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.channels import ChannelsPlugin
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components

from aufruf.auth.api import SECURITY_SCHEMES, MeController
from aufruf.auth.guards import provide_actor
from aufruf.auth.pages import LoginPages
from aufruf.booking.api import (
    AppointmentController,
    AvailabilityController,
    ProofChallengeController,
)
from aufruf.booking.legal import LegalPages
from aufruf.booking.manage import ManagePages
from aufruf.booking.pages import BookingPages
from aufruf.booking.service import AvailabilityCache
from aufruf.clock import Clock, SystemClock
from aufruf.db import Database
from aufruf.display.api import DeskAppointmentController
from aufruf.display.channels import channels_backend
from aufruf.display.pages import DeskPages
from aufruf.display.phone import PhoneViewPages
from aufruf.display.public import DisplaysController, display_socket, ticket_socket
from aufruf.display.sockets import counter_socket
from aufruf.display.wall import WallDisplayPage
from aufruf.errors import DomainError, RateLimited
from aufruf.kiosk.pages import KioskPages
from aufruf.logs import access_log_middleware, redact
from aufruf.notifications.outbox import Delivery
from aufruf.notifications.pages import OutboxPages
from aufruf.offices.api import DirectoryController
from aufruf.printer.api import PrintingController
from aufruf.printer.delivery import PrintDelivery
from aufruf.printer.pages import PrinterPages
from aufruf.printer.sockets import printer_socket
from aufruf.queue.api import (
    COUNTER_ACTIONS,
    CounterController,
    PublicTicketController,
    StaffTicketController,
    TicketController,
)
from aufruf.queue.events import EventHub
from aufruf.queue.line import LineCache
from aufruf.ratelimit import RateLimiter
from aufruf.settings import Settings
from aufruf.web.templating import static_files_router, template_config
from aufruf.worker import Worker

log = logging.getLogger("aufruf")


def error_body(
    status_code: int, detail: str, reason: str | None = None, extra: object = None
) -> dict:
    body: dict = {"status_code": status_code, "detail": detail}
    if reason:
        body["reason"] = reason
    if extra:
        body["extra"] = extra
    return body


def domain_error(_: Request, exc: DomainError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return Response(
        error_body(exc.status_code, exc.detail, exc.reason, exc.extra),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code >= 500:
        log.error(
            "error %s on %s %s", exc.detail, request.method, redact(request.url.path), exc_info=exc
        )
        return unexpected_error(request, exc)
    return Response(
        error_body(exc.status_code, exc.detail, None, exc.extra),
        status_code=exc.status_code,
        media_type=MediaType.JSON,
        headers=exc.headers,
    )


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, redact(request.url.path))
    return Response(
        error_body(500, "Something went wrong on our side. Please try again in a moment."),
        status_code=500,
        media_type=MediaType.JSON,
    )


@get("/health", media_type=MediaType.JSON, include_in_schema=True, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def app_dependencies(objects: dict[str, Any]) -> dict[str, Provide]:
    """The app's own objects as dependencies, chained: each is made to ask for the one named
    before it, and `actor` for the last. Litestar resolves the dependencies of one level of a
    handler concurrently, in an anyio task group per request (about a fifth of a ticket
    draw's CPU, measured); with one dependency per level it resolves them inline."""
    provided: dict[str, Provide] = {}
    previous: str | None = None
    for name, value in objects.items():

        def constant(value: Any = value, **_: Any) -> Any:
            return value

        provided[name] = Provide(
            _asking_for(previous, constant), sync_to_thread=False, use_cache=True
        )
        previous = name

    async def actor(request: Request, **_: Any) -> Any:
        return await provide_actor(request)

    provided["actor"] = Provide(_asking_for(previous, actor, request=Request))
    return provided


def _asking_for(previous: str | None, provider: Any, **parameters: Any) -> Any:
    """`provider`, signed as taking `parameters` (name -> type) and the dependency
    `previous`, which it ignores: Litestar reads what a provider needs from its signature."""
    if previous is not None:
        parameters[previous] = Any
    provider.__signature__ = inspect.Signature(
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in parameters]
    )
    provider.__annotations__ = {**parameters, "return": Any}
    return provider


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    run_worker: bool = False,
) -> Litestar:
    database = db or Database(settings.database_url)
    the_clock = clock or SystemClock()
    cache = AvailabilityCache()
    lines = LineCache(database)
    limiter = RateLimiter(database, settings.redis_url)
    channels = ChannelsPlugin(backend=channels_backend(settings), arbitrary_channels_allowed=True)
    events = EventHub(channels)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        if run_worker:
            delivery = Delivery.from_settings(database, settings)
            printing = PrintDelivery.from_settings(database, settings)
            worker = Worker(database, the_clock, limiter, events, delivery, printing)
            task = asyncio.create_task(worker.run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await limiter.close()
            if db is None:
                await database.dispose()

    return Litestar(
        route_handlers=[
            health,
            DirectoryController,
            AvailabilityController,
            AppointmentController,
            ProofChallengeController,
            TicketController,
            CounterController,
            *COUNTER_ACTIONS,
            StaffTicketController,
            PublicTicketController,
            MeController,
            LoginPages,
            DeskAppointmentController,  # the desk (aufruf.display)
            DeskPages,
            OutboxPages,  # the outbox for staff (aufruf.notifications)
            KioskPages,  # the kiosk's touch screen (aufruf.kiosk)
            BookingPages,  # the booking site and the citizen's appointment (aufruf.booking)
            ManagePages,
            LegalPages,
            counter_socket,
            display_socket,  # the public live views (aufruf.display.public)
            ticket_socket,
            DisplaysController,
            WallDisplayPage,
            PhoneViewPages,
            printer_socket,  # the printer agents (aufruf.printer)
            PrintingController,
            PrinterPages,
            static_files_router(),
        ],
        dependencies={
            **app_dependencies(
                {
                    "db": database,
                    "clock": the_clock,
                    "settings": settings,
                    "cache": cache,
                    "limiter": limiter,
                    "events": events,
                    "lines": lines,
                }
            ),
        },
        exception_handlers={
            DomainError: domain_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=[lifespan],
        plugins=[channels],
        middleware=[access_log_middleware],
        openapi_config=OpenAPIConfig(
            title="aufruf",
            version="1",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(security_schemes=SECURITY_SCHEMES),
        ),
        template_config=template_config(),
        state={"db": database, "clock": the_clock, "settings": settings},
    )


# A served process keeps a thousand live sockets and the views they share; with Python's
# default thresholds the objects each event leaves for a while reach the oldest generation, and
# its full collections (about 0.2 s of CPU over 300,000 objects) stalled the fan-out of calls.
# Younger collections less often let them die young (bench/fanout.py: CPU per call about -35 %).
GC_THRESHOLDS = (50_000, 20, 10)


def app_from_env() -> Litestar:
    """The app for `uvicorn --factory` (used by `aufruf serve`), in a process of its own."""
    gc.set_threshold(*GC_THRESHOLDS)
    return create_app(
        Settings.from_env(), run_worker=os.environ.get("AUFRUF_RUN_WORKER", "1") == "1"
    )
