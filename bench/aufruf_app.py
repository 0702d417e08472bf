"""The aufruf app as bench/booking.py serves it: `uvicorn --factory aufruf_app:create`.

Settings come from the environment (AUFRUF_DATABASE_URL, AUFRUF_SECRET_KEY, ...) as in
production, except that the per-client booking rate limit is off: every request of the
benchmark comes from 127.0.0.1 and would otherwise be refused after a few bookings."""

from __future__ import annotations

from dataclasses import replace

from litestar import Litestar

from aufruf.app import create_app
from aufruf.settings import Settings


def create() -> Litestar:
    return create_app(replace(Settings.from_env(), booking_rate_limit=0))
