"""Logging that never carries a secret: paths are written with their tokens cut out."""

from __future__ import annotations

import logging
import re
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

# path segments that follow these words are secrets (appointment and ticket links)
_SECRET_AFTER = re.compile(r"(/(?:appointments|tickets|a|t|ws/tickets)/)([^/?#]+)")

access_log = logging.getLogger("aufruf.access")


def redact(path: str) -> str:
    """The path with every secret segment replaced by '…'."""
    return _SECRET_AFTER.sub(r"\1…", path)


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """One line per HTTP request: method, redacted path, status, milliseconds."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            access_log.info(
                "%s %s %d %.0fms",
                scope["method"],
                redact(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )

    return middleware
