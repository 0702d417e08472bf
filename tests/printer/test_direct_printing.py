"""Printers the server reaches itself: the worker sends each job's bytes over TCP, at most
once. A printer that refuses keeps its jobs queued until it is back; one that cuts a ticket
off leaves it for staff to reprint; two workers at once still print every ticket once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from aufruf.db import Database
from aufruf.printer import service as printing
from aufruf.printer import status as printer_status
from aufruf.printer.delivery import PrintDelivery
from aufruf.printer.logic import QR_MODULE_DOTS
from aufruf.printer.model import PrinterStatus, PrintJob
from aufruf.printer.render import RenderConfig, job_bytes
from aufruf.queue.model import Ticket
from aufruf.worker import Worker
from tests.conftest import SECRET
from tests.printer.conftest import (
    OFFICE_NAME,
    PUBLIC,
    SERVICE_NAME,
    a_printing_office,
    draw,
)
from tests.printer.network_printer import NetworkPrinter
from tests.printer.paper import read_paper
from tests.printer.test_ticket_layout import decode

CONFIG = RenderConfig(PUBLIC, SECRET)


@pytest.fixture
async def printer():
    device = NetworkPrinter()
    await device.start()
    yield device
    await device.stop()


async def _office(db, clock, printer: NetworkPrinter, **kwargs):
    return await a_printing_office(
        db, clock, connection="direct", target_a=printer.target, target_b=printer.target, **kwargs
    )


async def _jobs(db) -> list[PrintJob]:
    async with db.read() as session:
        return list(await session.scalars(select(PrintJob).order_by(PrintJob.id)))


def _numbers(received: list[bytes]) -> list[str]:
    return [next(w for w in read_paper(data).text.split() if w[:1] == "A") for data in received]


async def test_the_printer_receives_exactly_the_rendered_ticket(db, client, morning, printer):
    office = await _office(db, morning, printer)
    await draw(client, office.clerk)  # someone is ahead
    ticket = (await draw(client, office.kiosk_a)).json()
    [job] = [j for j in await _jobs(db) if j.ticket_id == ticket["id"]]
    async with db.read() as session:
        expected = await job_bytes(session, job.id, CONFIG, morning.now())

    outcome = await PrintDelivery(db, CONFIG).run(morning.now())

    assert outcome.printed == 1
    assert printer.received == [expected]
    paper = read_paper(printer.received[0])
    assert paper.has(ticket["number"])
    assert paper.has(OFFICE_NAME) and paper.has(SERVICE_NAME)  # umlauts and € in CP858
    assert paper.has("Vor Ihnen: 1")
    assert paper.qr == f"{PUBLIC}/t/{ticket['token']}"
    [done] = await _jobs(db)
    assert (done.status, done.attempts) == ("printed", 1)
    assert done.started_at is not None and done.finished_at is not None


def _qr_module_dots(data: bytes) -> int:
    [size] = [
        op.args[2]
        for op in decode(data).commands(b"GS (k")
        if op.args[:1] == b"1" and op.args[1] == 67  # fn = 67: module size
    ]
    return size


async def test_each_kiosks_ticket_comes_out_of_its_own_printer_in_its_layout(
    db, client, morning, printer
):
    upstairs = NetworkPrinter()
    await upstairs.start()
    try:
        office = await a_printing_office(
            db,
            morning,
            connection="direct",
            target_a=printer.target,
            target_b=upstairs.target,
            width_a=80,
            width_b=58,
        )
        entrance = (await draw(client, office.kiosk_a)).json()["number"]
        above = (await draw(client, office.kiosk_b)).json()["number"]

        await PrintDelivery(db, CONFIG).run(morning.now())
    finally:
        await upstairs.stop()

    assert _numbers(printer.received) == [entrance]
    assert _numbers(upstairs.received) == [above]
    assert _qr_module_dots(printer.received[0]) == QR_MODULE_DOTS[80]
    assert _qr_module_dots(upstairs.received[0]) == QR_MODULE_DOTS[58]


async def test_a_refusing_printer_keeps_every_job_until_it_is_back_then_prints_each_once(
    db, client, morning, printer
):
    office = await _office(db, morning, printer)
    await printer.stop()
    numbers = [(await draw(client, office.kiosk_a)).json()["number"] for _ in range(3)]
    delivery = PrintDelivery(db, CONFIG)

    refused = await delivery.run(morning.now())
    again_too_soon = await delivery.run(morning.now() + timedelta(seconds=1))

    assert (refused.printed, refused.retried) == (0, 3)
    assert (again_too_soon.printed, again_too_soon.retried) == (0, 0)
    assert {j.status for j in await _jobs(db)} == {"queued"}
    async with db.read() as session:
        status = await session.get(PrinterStatus, "drucker-a")
    assert status.online is False and "cannot reach the printer" in status.problem

    await printer.start()
    morning.advance(seconds=30)
    back = await delivery.run(morning.now())
    later = await delivery.run(morning.now() + timedelta(minutes=5))

    assert back.printed == 3 and later.printed == 0
    assert _numbers(printer.received) == numbers
    assert {j.status for j in await _jobs(db)} == {"printed"}


async def test_a_ticket_cut_off_mid_print_is_interrupted_and_never_sent_again(
    db, client, morning, printer
):
    office = await _office(db, morning, printer)
    printer.cut_after = 40
    await draw(client, office.kiosk_a)
    delivery = PrintDelivery(db, CONFIG)

    outcome = await delivery.run(morning.now())
    printer.cut_after = None
    morning.advance(minutes=10)
    later = await delivery.run(morning.now())

    assert outcome.interrupted == 1
    assert later.printed == 0 and printer.received == []
    [job] = await _jobs(db)
    assert job.status == "interrupted" and "broke" in job.last_error
    async with db.read() as session:
        [state] = [
            s
            for s in await printer_status.printer_states(session, None, morning.now())
            if s.id == "drucker-a"
        ]
    assert state.interrupted == 1


async def test_a_ticket_no_longer_active_is_not_printed(db, client, morning, printer):
    office = await _office(db, morning, printer)
    ticket = (await draw(client, office.kiosk_a)).json()
    async with db.write() as session:
        await session.execute(
            update(Ticket).where(Ticket.id == ticket["id"]).values(status="cancelled")
        )

    outcome = await PrintDelivery(db, CONFIG).run(morning.now())

    assert outcome.failed == 1 and printer.received == []
    [job] = await _jobs(db)
    assert job.status == "failed" and "no longer active" in job.last_error


async def test_two_workers_at_once_print_every_ticket_exactly_once(db, client, morning, printer):
    office = await _office(db, morning, printer)
    numbers = [(await draw(client, office.kiosk_a)).json()["number"] for _ in range(12)]
    numbers += [(await draw(client, office.kiosk_b)).json()["number"] for _ in range(12)]
    other = Database(db.url)
    try:
        first, second = await asyncio.gather(
            PrintDelivery(db, CONFIG).run(morning.now()),
            PrintDelivery(other, CONFIG).run(morning.now()),
        )
    finally:
        await other.dispose()

    assert first.printed + second.printed == 24
    assert sorted(_numbers(printer.received)) == sorted(numbers)
    assert {j.status for j in await _jobs(db)} == {"printed"}


async def test_the_running_worker_prints_a_new_ticket_within_moments(db, client, morning, printer):
    office = await _office(db, morning, printer)
    worker = Worker(db, morning, printing=PrintDelivery(db, CONFIG))
    stop = asyncio.Event()
    running_worker = asyncio.create_task(worker.run(stop))
    try:
        number = (await draw(client, office.kiosk_a)).json()["number"]
        async with asyncio.timeout(10):
            while not printer.received:
                assert not running_worker.done()
                await asyncio.sleep(0.05)  # the worker runs in this loop; wait for its turn
    finally:
        stop.set()
        await running_worker

    assert _numbers(printer.received) == [number]


async def test_two_workers_claiming_at_the_same_moment_take_different_jobs(
    db, client, morning, printer
):
    office = await _office(db, morning, printer)
    for _ in range(6):
        await draw(client, office.kiosk_a)
    other = Database(db.url)
    first_claimed, second_claimed = asyncio.Event(), asyncio.Event()

    async def first() -> list[int]:
        async with db.write() as session:
            taken = await printing.claim_direct(session, morning.now(), limit=3)
            first_claimed.set()
            if not db.is_sqlite:  # PostgreSQL: hold the rows while the other one claims
                await asyncio.wait_for(second_claimed.wait(), 10)
        return [job.id for job in taken]

    async def second() -> list[int]:
        await first_claimed.wait()
        async with other.write() as session:  # SQLite: waits for the first to commit
            taken = await printing.claim_direct(session, morning.now(), limit=6)
        second_claimed.set()
        return [job.id for job in taken]

    try:
        mine, theirs = await asyncio.gather(first(), second())
    finally:
        await other.dispose()

    assert len(mine) == 3 and len(theirs) == 3
    assert set(mine).isdisjoint(theirs)
