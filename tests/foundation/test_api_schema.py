"""Property-based run of the whole HTTP API against its own OpenAPI schema (schemathesis):
no request, however odd, gets a 5xx or a status code the schema does not document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from aufruf import migrate
from aufruf.app import create_app
from aufruf.db import Database
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import SECRET

CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
)


async def _prepare(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(db.engine)
    await a_location(db, "amt", weekdays=tuple(range(7)), hours="00:00-23:50", lead_minutes=0)
    await db.dispose()


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "aufruf.db"
    asyncio.run(_prepare(path))
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{path}", secret_key=SECRET))
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


def _operations(schema) -> dict:
    return {op.label: op for op in (r.ok() for r in schema.get_all_operations())}


OPERATIONS = [
    "GET /health",
    "GET /api/v1/locations",
    "GET /api/v1/services",
    "GET /api/v1/availability",
    "POST /api/v1/appointments",
    "GET /api/v1/appointments/{token}",
    "DELETE /api/v1/appointments/{token}",
    "POST /api/v1/appointments/{token}/reschedule",
    "POST /api/v1/appointments/{token}/confirm",
    "GET /api/v1/appointments/{token}/calendar.ics",
    "GET /api/v1/proof-challenge",
    "GET /api/v1/me",
    "POST /api/v1/locations/{location}/tickets",
    "POST /api/v1/locations/{location}/checkins",
    "GET /api/v1/locations/{location}/queue",
    "GET /api/v1/locations/{location}/counters",
    "GET /api/v1/locations/{location}/appointments",
    "GET /api/v1/locations/{location}/displays",
    "GET /api/v1/locations/{location}/events",
    "POST /api/v1/counters/{counter}/call-next",
    "POST /api/v1/counters/{counter}/recall",
    "POST /api/v1/counters/{counter}/start",
    "POST /api/v1/counters/{counter}/done",
    "POST /api/v1/counters/{counter}/no-show",
    "POST /api/v1/counters/{counter}/transfer",
    "POST /api/v1/counters/{counter}/pause",
    "POST /api/v1/counters/{counter}/resume",
    "POST /api/v1/counters/{counter}/open",
    "POST /api/v1/counters/{counter}/close",
    "POST /api/v1/counters/{counter}/sit",
    "POST /api/v1/counters/{counter}/leave",
    "POST /api/v1/tickets/{ref}/priority",
    "POST /api/v1/tickets/{ref}/reactivate",
    "POST /api/v1/tickets/{ref}/cancel",
    "POST /api/v1/tickets/{ref}/reprint",
    "GET /api/v1/locations/{location}/printers",
    "GET /api/v1/tickets/{ref}",
    "DELETE /api/v1/tickets/{ref}",
]


def test_every_operation_is_covered(api_schema):
    assert sorted(_operations(api_schema)) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(api_schema, label):
    operation = _operations(api_schema)[label]

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(checks=CHECKS)

    run()
