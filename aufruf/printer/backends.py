"""Reaching a printer: `net:HOST[:PORT]`, `file:PATH`, `dummy:PATH`, `usb:VID:PID`,
`serial:DEVICE[:BAUD]`. Used by the worker (direct printers) and by the printer agent.

Every step has a timeout and none blocks the event loop: the network through asyncio, files
and python-escpos's USB and serial printers in a thread. Opening and writing are two steps,
so that the caller can record "started" in between (at most once):
- `open_printer` raises PrinterUnreachable when nothing was sent (retry later);
- `Connection.write` raises PrintCutOff when the bytes may be partly on paper (never resend).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CONNECT_TIMEOUT = 5.0
WRITE_TIMEOUT = 15.0
# after the last byte: how long the printer may take to close its side; a reset means cut off
CLOSE_TIMEOUT = 3.0
RAW_PORT = 9100
SPEC = re.compile(r"^(net|usb|serial|file|dummy):(.+)$")


class PrinterUnreachable(Exception):
    """The printer could not be reached: nothing was sent."""


class PrintCutOff(Exception):
    """The connection broke while the bytes went out: part of the ticket may be printed."""


@dataclass(frozen=True)
class Target:
    kind: str
    address: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.address}"


def parse_target(spec: str) -> Target:
    """The printer `spec` names; ValueError with the accepted forms when it is malformed."""
    match = SPEC.match(spec.strip())
    if not match:
        raise ValueError(
            f"{spec!r} is not a printer: use net:HOST[:PORT], usb:VID:PID, serial:DEVICE, "
            "file:PATH or dummy:PATH"
        )
    kind, address = match.groups()
    if kind == "usb" and not re.fullmatch(r"(0x)?[0-9a-fA-F]{1,4}:(0x)?[0-9a-fA-F]{1,4}", address):
        raise ValueError(f"usb:{address}: give the vendor and product id, e.g. usb:04b8:0202")
    if kind == "net":
        _host_port(address)
    return Target(kind, address)


def _host_port(address: str) -> tuple[str, int]:
    if address.startswith("["):  # [IPv6]:port
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":") or str(RAW_PORT)
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, str(RAW_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"net:{address}: give HOST or HOST:PORT")
    return host, int(port)


class Connection(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    async def paper(self) -> str | None:
        """ "ok", "low", "out", or None where the printer does not say."""
        ...


class NetConnection:
    """A raw TCP connection (port 9100), as network thermal printers offer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), WRITE_TIMEOUT)
            # all bytes are with the kernel; a printer that cut us off answers the rest with a
            # reset, one that took everything closes when we do (or stays silent)
            if self.writer.can_write_eof():
                self.writer.write_eof()
            with contextlib.suppress(TimeoutError):
                while await asyncio.wait_for(self.reader.read(1024), CLOSE_TIMEOUT):
                    pass
        except (OSError, TimeoutError) as exc:
            raise PrintCutOff(f"the connection broke while printing: {_why(exc)}") from exc

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_TIMEOUT)

    async def paper(self) -> str | None:
        return None


class ThreadConnection:
    """A blocking device (a file, python-escpos's USB or serial printer) driven in a thread."""

    def __init__(self, device: Any, write: Any, close: Any, paper: Any = None) -> None:
        self.device = device
        self._write = write
        self._close = close
        self._paper = paper

    async def write(self, data: bytes) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._write, data), WRITE_TIMEOUT)
        except Exception as exc:
            raise PrintCutOff(f"writing to the printer failed: {_why(exc)}") from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.to_thread(self._close), CLOSE_TIMEOUT)

    async def paper(self) -> str | None:
        if self._paper is None:
            return None
        try:
            answer = await asyncio.wait_for(asyncio.to_thread(self._paper), CLOSE_TIMEOUT)
        except Exception:
            return None
        return paper_state(answer)


def paper_state(answer: bytes) -> str | None:
    """The paper sensor's answer to DLE EOT 4 as "ok", "low" or "out"; None without one (the
    library would call silence "plenty of paper")."""
    if not answer:
        return None
    if answer[0] & 0x60 == 0x60:  # paper end sensor
        return "out"
    if answer[0] & 0x0C == 0x0C:  # near-end sensor
        return "low"
    return "ok"


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _open_file(path: str, mode: str) -> ThreadConnection:
    handle = Path(path).open(mode)  # closed with the connection

    def write(data: bytes) -> None:
        handle.write(data)
        handle.flush()

    return ThreadConnection(handle, write, handle.close)


def _open_usb(address: str) -> ThreadConnection:
    from escpos.printer import Usb

    vendor, product = (int(part, 16) for part in address.split(":"))
    printer = Usb(vendor, product, profile="TM-T88V")
    printer.open()
    return ThreadConnection(printer, printer._raw, printer.close, _paper_query(printer))


def _open_serial(address: str) -> ThreadConnection:
    from escpos.printer import Serial

    device, _, baud = address.partition(":")
    printer = Serial(devfile=device, baudrate=int(baud or 9600), timeout=1, profile="TM-T88V")
    printer.open()
    if printer.device is None:
        raise OSError(f"cannot open {device}")
    return ThreadConnection(printer, printer._raw, printer.close, _paper_query(printer))


def _paper_query(printer: Any) -> Any:
    from escpos.constants import RT_STATUS_PAPER

    return lambda: printer.query_status(RT_STATUS_PAPER)


async def open_printer(target: Target | str, seconds: float = CONNECT_TIMEOUT) -> Connection:
    """An open connection to the printer; PrinterUnreachable when it cannot be had."""
    if isinstance(target, str):
        target = parse_target(target)
    try:
        if target.kind == "net":
            host, port = _host_port(target.address)
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), seconds)
            return NetConnection(reader, writer)
        opener = {
            "dummy": lambda: _open_file(target.address, "ab"),
            "file": lambda: _open_file(target.address, "wb"),
            "usb": lambda: _open_usb(target.address),
            "serial": lambda: _open_serial(target.address),
        }[target.kind]
        return await asyncio.wait_for(asyncio.to_thread(opener), seconds)
    except Exception as exc:
        raise PrinterUnreachable(f"cannot reach the printer {target}: {_why(exc)}") from exc
