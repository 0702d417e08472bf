"""The API's one error shape, and how handlers document the error answers they give."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec


class ErrorOut(msgspec.Struct):
    status_code: int
    detail: str
    reason: str | None = None
    extra: list[dict[str, str]] | None = None


MEANING = {
    400: "Invalid input; `extra[].key` names each field at fault",
    401: "No credentials, or credentials that are not valid",
    403: "Not allowed for this role, location or counter",
    404: "Not found",
    409: "Not possible now; `reason` says why (e.g. slot_taken, limit_reached, not_waiting)",
    429: "Too many requests from this client; see Retry-After",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a handler gives."""
    return {
        code: ResponseSpec(data_container=ErrorOut, description=MEANING[code]) for code in codes
    }
