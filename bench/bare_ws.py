"""The baseline for bench/fanout.py: a bare `websockets` server. Every client that connects to
/ is kept; whatever a client sends on /control is broadcast to all of them at once.

    python bench/bare_ws.py PORT
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    if ws.request is not None and ws.request.path == "/control":
        async for message in ws:
            broadcast(clients, message)
        return
    clients.add(ws)
    try:
        await ws.wait_closed()
    finally:
        clients.discard(ws)


async def main(port: int) -> None:
    async with serve(
        handler, "127.0.0.1", port, ping_interval=None, compression=None, backlog=2048
    ):
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
