"""A network printer on loopback: a real TCP listener that keeps what each connection sent.
It can be switched off (the port refuses connections), switched on again on the same port,
and told to cut a connection off after some bytes (a reset, as a printer losing power)."""

from __future__ import annotations

import asyncio
import socket
import struct

from tests.display.live import free_port


class NetworkPrinter:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[bytes] = []  # one entry per connection that ended normally
        self.cut_off: list[bytes] = []  # what connections that were cut off had sent
        self.cut_after: int | None = None
        self.server: asyncio.Server | None = None

    @property
    def target(self) -> str:
        return f"net:127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_after is not None:
            self.cut_off.append(await reader.read(self.cut_after))
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # a reset, not a goodbye
            return
        chunks = []
        while chunk := await reader.read(65536):
            chunks.append(chunk)
        self.received.append(b"".join(chunks))
        writer.close()
