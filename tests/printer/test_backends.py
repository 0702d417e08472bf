"""The ways to reach a printer, each through a real device: a file, a pseudo-terminal for the
serial line, a loopback port that refuses; and a clear error for what cannot be reached."""

from __future__ import annotations

import asyncio
import os
import tty

import pytest

from aufruf.printer.backends import PrinterUnreachable, open_printer, parse_target
from tests.display.live import free_port


async def test_dummy_appends_every_job_to_the_file(tmp_path):
    path = tmp_path / "paper.bin"
    for job in (b"first\n", b"second\n"):
        connection = await open_printer(f"dummy:{path}")
        await connection.write(job)
        await connection.close()

    assert path.read_bytes() == b"first\nsecond\n"


async def test_file_writes_each_job_to_the_device_as_it_is(tmp_path):
    path = tmp_path / "lp0"
    connection = await open_printer(f"file:{path}")
    await connection.write(b"\x1b@ticket")
    await connection.close()

    assert path.read_bytes() == b"\x1b@ticket"


async def test_serial_sends_the_bytes_down_the_line():
    controller, device = os.openpty()
    tty.setraw(controller)
    try:
        connection = await open_printer(f"serial:{os.ttyname(device)}:19200")
        await connection.write(b"\x1b@A017\n")
        await connection.close()
        received = os.read(controller, 100)
    finally:
        os.close(controller)
        os.close(device)

    assert received == b"\x1b@A017\n"


@pytest.mark.parametrize(
    "spec",
    [
        f"net:127.0.0.1:{free_port()}",
        "serial:/dev/aufruf-no-such-line",
        "dummy:/nonexistent-folder/paper.bin",
        "usb:04b8:0e15",
    ],
)
async def test_a_printer_that_cannot_be_reached_says_so(spec):
    with pytest.raises(PrinterUnreachable, match="cannot reach the printer"):
        await open_printer(spec, seconds=2)


@pytest.mark.parametrize("spec", ["lpt:1", "net:", "net:host:port", "usb:epson", "file"])
def test_a_malformed_printer_is_refused_with_the_accepted_forms(spec):
    with pytest.raises(ValueError, match=r"net:HOST|usb:|HOST:PORT"):
        parse_target(spec)


@pytest.mark.parametrize(("answer", "paper"), [(0x12, "ok"), (0x1E, "low"), (0x72, "out")])
async def test_a_serial_printer_tells_its_paper_sensor(answer, paper):
    controller, device = os.openpty()
    tty.setraw(controller)
    try:
        connection = await open_printer(f"serial:{os.ttyname(device)}")

        async def printer_answers() -> bytes:
            query = await asyncio.to_thread(os.read, controller, 3)
            os.write(controller, bytes([answer]))
            return query

        query, told = await asyncio.gather(printer_answers(), connection.paper())
        await connection.close()
    finally:
        os.close(controller)
        os.close(device)

    assert query == b"\x10\x04\x04"  # DLE EOT 4: the paper sensor
    assert told == paper


async def test_a_serial_printer_that_does_not_answer_reports_no_paper_state():
    controller, device = os.openpty()
    tty.setraw(controller)
    try:
        connection = await open_printer(f"serial:{os.ttyname(device)}")
        told = await connection.paper()
        await connection.close()
    finally:
        os.close(controller)
        os.close(device)

    assert told is None
