"""The live views' picture of a location is read as plain rows, yet every waiting ticket in it
has exactly the one ticket shape of `ticket_out` (plus arrival and last call), walk-ins and
checked-in appointments alike, in call order; and each counter's queue holds what it serves."""

from __future__ import annotations

from datetime import timedelta

import msgspec
from sqlalchemy import delete

from aufruf.display.service import location_view
from aufruf.offices.model import CounterService
from aufruf.queue import service as queue
from aufruf.queue.api import ticket_out
from tests.builders import a_booking, a_location
from tests.queue.test_queue_service import MONDAY_0900, call_next, draw, open_counters


async def test_waiting_tickets_have_ticket_outs_shape_in_call_order(db):
    await a_location(db, services={"pass": 10, "other": 15}, counters=2)
    async with db.write() as session:
        await session.execute(
            delete(CounterService).where(
                CounterService.counter_id == "amt-2", CounterService.service_id == "other"
            )
        )
    booked = await a_booking(db, MONDAY_0900 + timedelta(minutes=20))
    for services in (["pass"], ["other"], ["pass", "other"], ["pass"]):
        await draw(db, services)
    async with db.write() as session:
        await queue.check_in(
            session, queue.Change(), MONDAY_0900, "amt", booked.appointment.code, actor="kiosk"
        )
    await open_counters(db, ["amt-1", "amt-2"])
    called = await call_next(db, "amt-1")

    async with db.read() as session:
        view = await location_view(session, "amt", MONDAY_0900)
        line = await queue.waiting_line(session, "amt", MONDAY_0900)
        expected = {}
        for ticket in line.waiting:
            shape = msgspec.to_builtins(await ticket_out(session, ticket, MONDAY_0900, line=line))
            shape["arrived_at"] = ticket.arrived_at.isoformat()
            shape["called_at"] = ticket.called_at.isoformat() if ticket.called_at else None
            expected[ticket.id] = shape

    waiting = {i: s for i, s in view.tickets.items() if s["status"] == "waiting"}
    assert waiting == expected
    assert list(waiting) == [t.id for t in line.waiting]  # call order
    assert any("appointment" in shape for shape in waiting.values())
    assert view.tickets[called.id]["status"] == "called"
    assert [t["number"] for t in view.queues["amt-2"]] == [
        t["number"] for t in waiting.values() if t["services"] == ["pass"]
    ]
    assert len(view.queues["amt-1"]) == len(waiting)
    assert view.waiting == {"other": 2, "pass": 3}


async def test_a_view_brought_up_to_date_from_the_previous_one_equals_one_read_whole(db):
    await a_location(db, services={"pass": 10, "other": 15}, counters=2)
    tickets = [await draw(db, services) for services in (["pass"], ["other"], ["pass"])]
    await open_counters(db, ["amt-1", "amt-2"])
    async with db.read() as session:
        known = await location_view(session, "amt", MONDAY_0900)

    async with db.write() as session:  # the last one first; one called; one new; one moved
        await queue.set_priority(session, queue.Change(), tickets[2].id, 1, MONDAY_0900, "t")
    called = await call_next(db, "amt-1")
    await draw(db, ["other"])
    async with db.write() as session:
        await queue.transfer(session, queue.Change(), "amt-1", "other", MONDAY_0900, "t")

    async with db.read() as session:
        updated = await location_view(session, "amt", MONDAY_0900, known)
    async with db.read() as session:
        whole = await location_view(session, "amt", MONDAY_0900)

    assert called.id == tickets[2].id  # the priority was seen
    assert updated.seq == whole.seq > known.seq
    assert updated.rows == whole.rows
    assert updated.tickets == whole.tickets
    assert updated.queues == whole.queues
    assert updated.waiting == whole.waiting == {"other": 3, "pass": 1}
    assert updated.tickets[called.id]["services"] == ["other"]  # transferred, waiting again


async def test_the_view_read_in_one_statement_says_what_the_reads_one_at_a_time_say(db):
    """On PostgreSQL a view's reads are one plain statement (postgres.VIEW): counters with
    their current tickets (called with an appointment, serving, none), a paused counter, the
    last calls with a recall, and the line brought up to date from an earlier view, all as the
    ORM's reads give them."""
    from aufruf.display.service import _location_view_in_steps

    await a_location(db, services={"pass": 10, "other": 15}, counters=3)
    booked = await a_booking(db, MONDAY_0900 + timedelta(minutes=20), ["other"])
    for services in (["pass"], ["other"], ["pass", "other"], ["pass"], ["pass"]):
        await draw(db, services)
    await open_counters(db, ["amt-1", "amt-2", "amt-3"])
    first = await call_next(db, "amt-1")
    async with db.write() as session:
        await queue.start(session, queue.Change(), "amt-1", MONDAY_0900, "t")
    async with db.read() as session:
        known = await location_view(session, "amt", MONDAY_0900)

    async with db.write() as session:
        await queue.check_in(
            session, queue.Change(), MONDAY_0900, "amt", booked.appointment.code, actor="kiosk"
        )
    booked_ticket = await call_next(db, "amt-2", now=MONDAY_0900 + timedelta(minutes=20))
    later = MONDAY_0900 + timedelta(minutes=22)
    async with db.write() as session:
        await queue.recall(session, queue.Change(), "amt-2", later, "t")
        await queue.set_counter_status(session, queue.Change(), "amt-3", "pause", later, "t")
    await draw(db, ["other"], now=later)

    async with db.read() as session:
        updated = await location_view(session, "amt", later, known)
    async with db.read() as session:
        whole = await location_view(session, "amt", later)

    assert booked_ticket.appointment_id == booked.appointment.id  # due: called first
    two = updated.counters["amt-2"]
    assert (two["status"], two["current"]["number"], two["current"]["counter"]) == (
        "open",
        booked_ticket.number,
        "Platz 2",
    )
    assert two["current"]["appointment"]["code"] == booked.appointment.code
    assert updated.counters["amt-1"]["current"]["status"] == "serving"
    assert updated.counters["amt-1"]["current"]["id"] == first.id
    assert (updated.counters["amt-3"]["status"], updated.counters["amt-3"]["current"]) == (
        "paused",
        None,
    )
    assert [c["number"] for c in updated.calls] == [booked_ticket.number, first.number]
    for view in (updated, whole):
        assert (view.seq, view.counters, view.calls) == (whole.seq, whole.counters, whole.calls)
        assert (view.rows, view.tickets, view.queues, view.waiting) == (
            whole.rows,
            whole.tickets,
            whole.queues,
            whole.waiting,
        )
    if db.engine.dialect.name == "postgresql":  # the one statement against the ORM's reads
        for earlier in (None, known):
            async with db.read() as session:
                stepwise = await _location_view_in_steps(session, "amt", later, earlier)
            assert stepwise.seq == whole.seq
            assert stepwise.counters == whole.counters
            assert stepwise.calls == whole.calls
            assert stepwise.rows == whole.rows
            assert stepwise.tickets == whole.tickets
            assert stepwise.queues == whole.queues
            assert stepwise.waiting == whole.waiting


async def test_every_phone_message_of_a_view_is_its_ticket_in_the_phone_shape(db):
    """A waiting ticket's phone message is written from a template made once for its row; it
    must be exactly the encoded public shape, with the figures of this view (none too)."""
    from aufruf.display.service import compact, public_ticket

    await a_location(db, services={"pass": 10, "other": 15}, counters=2)
    booked = await a_booking(db, MONDAY_0900 + timedelta(minutes=20))
    async with db.write() as session:
        await session.execute(  # nobody serves "other" alone: no estimate for those
            delete(CounterService).where(CounterService.service_id == "other")
        )
    for services in (["pass"], ["other"], ["pass", "other"], ["pass"]):
        await draw(db, services)
    async with db.write() as session:
        await queue.check_in(
            session, queue.Change(), MONDAY_0900, "amt", booked.appointment.code, actor="kiosk"
        )
    await open_counters(db, ["amt-1"])
    called = await call_next(db, "amt-1")
    async with db.read() as session:
        known = await location_view(session, "amt", MONDAY_0900)
    await call_next(db, "amt-1")
    async with db.read() as session:
        view = await location_view(session, "amt", MONDAY_0900, known)

    for earlier_or_later in (known, view):
        for ticket_id, shape in earlier_or_later.tickets.items():
            expected = compact(public_ticket(shape)), shape["status"]
            assert earlier_or_later.public_message(ticket_id) == expected
    messages = [msgspec.json.decode(view.public_message(i)[0]) for i in view.tickets]
    assert any(m.get("appointment") for m in messages)
    assert any(m["estimated_wait_minutes"] is None for m in messages)
    assert {m["status"] for m in messages} == {"waiting", "called"}
    assert called.id not in view.tickets  # done by the second call
