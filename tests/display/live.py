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
    ping_seconds: float | None = None,
) -> Iterator[str]:
    """Serve `create_app(settings, clock=clock)` until the block ends (with the worker loop,
    as `aufruf serve` runs it, if `run_worker`); yields the base URL. `ping_seconds`: how
    often the server pings a websocket and how long it waits for the answer (uvicorn's 20 s
    each, which `aufruf serve` keeps, without)."""
    from aufruf.app import create_app

    app = create_app(settings, clock=clock, run_worker=run_worker)
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ws="auto",
            lifespan="on",
            **(
                {}
                if ping_seconds is None
                else {"ws_ping_interval": ping_seconds, "ws_ping_timeout": ping_seconds}
            ),
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


class SilentLink:
    """A TCP relay to `port` that can fall silent without closing, as a link does whose far
    end vanished (a pulled cable, a router that forgot the connection): while `silent`,
    nothing passes either way and no connection is closed; what was held passes once it is
    not. Serves on `self.port` until `close`."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.flowing = threading.Event()
        self.flowing.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, name=f"link:{self.port}", daemon=True).start()

    @contextmanager
    def silent(self) -> Iterator[None]:
        self.flowing.clear()
        try:
            yield
        finally:
            self.flowing.set()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:  # closed
                return
            far = socket.create_connection(("127.0.0.1", self.target))
            self.open += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.flowing.set()
        for each in self.open:
            each.close()
