"""The baseline for bench/booking.py: a bare Litestar app with one GET endpoint returning a
small JSON body, served by uvicorn exactly like the aufruf app (`uvicorn --factory`)."""

from __future__ import annotations

from litestar import Litestar, MediaType, get


@get("/", media_type=MediaType.JSON, sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"status": "ok"}


def create() -> Litestar:
    return Litestar(route_handlers=[hello])
