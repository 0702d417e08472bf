"""A real server for tests that need one: uvicorn in a thread of its own, with its own event
loop and its own database engine, on a free port. Websockets and asyncpg then never share an
event loop with the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from aufruf.clock import Clock
from aufruf.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(
    settings: Settings,
    clock: Clock | None = None,
    port: int | None = None,
    *,
    run_worker: bool = False,
) -> Iterator[str]:
    """Serve `create_app(settings, clock=clock)` until the block ends (with the worker loop,
    as `aufruf serve` runs it, if `run_worker`); yields the base URL."""
    from aufruf.app import create_app

    app = create_app(settings, clock=clock, run_worker=run_worker)
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", ws="auto", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise AssertionError("the test server stopped during start-up")
        if time.monotonic() > deadline:
            raise AssertionError("the test server did not start within 30 seconds")
        time.sleep(0.02)  # polling a starting server, not timing the product
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
