"""Tickets, numbers and counter actions in real transactions on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.queue import service as queue
from aufruf.queue.model import QueueEvent, Ticket
from tests.builders import a_booking, a_location

MONDAY_0900 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


async def draw(db, services=("pass",), now=MONDAY_0900, source="kiosk"):
    async with db.write() as session:
        change = queue.Change()
        ticket = await queue.draw_ticket(
            session, change, now, "amt", list(services), source=source, actor="test"
        )
        return ticket


async def open_counters(db, ids, now=MONDAY_0900):
    for counter_id in ids:
        async with db.write() as session:
            await queue.set_counter_status(session, queue.Change(), counter_id, "open", now, "test")


async def call_next(db, counter_id, now=MONDAY_0900):
    async with db.write() as session:
        return await queue.call_next(session, queue.Change(), counter_id, now, "test")


async def test_numbers_count_up_per_letter_and_day(db):
    await a_location(db, services={"pass": 10, "other": 10})
    assert [(await draw(db)).number for _ in range(3)] == ["A001", "A002", "A003"]
    tomorrow = await draw(db, now=MONDAY_0900 + timedelta(days=1))
    assert tomorrow.number == "A001"


async def test_two_hundred_concurrent_tickets_get_two_hundred_numbers(db):
    await a_location(db)
    tickets = await asyncio.gather(*(draw(db) for _ in range(200)))
    numbers = [t.number for t in tickets]
    assert len(set(numbers)) == 200
    assert sorted(numbers) == [f"A{n:03d}" for n in range(1, 201)]


async def test_every_change_has_the_next_seq_without_gaps(db):
    await a_location(db)
    await asyncio.gather(*(draw(db) for _ in range(30)))
    async with db.read() as session:
        seqs = list(await session.scalars(select(QueueEvent.seq).order_by(QueueEvent.seq)))
    assert seqs == list(range(1, 31))


async def test_the_events_published_are_the_events_stored(db):
    """What goes out on the channel after commit is what the database keeps (on PostgreSQL
    an event is written by a plain statement, outside the session)."""
    from aufruf.queue.events import event_message

    await a_location(db, services={"pass": 10, "id": 5})
    await open_counters(db, ["amt-1"])
    first, second = await draw(db, ["id", "pass"]), await draw(db)
    published = []
    for _ in range(2):
        change = queue.Change()
        async with db.write() as session:
            await queue.call_next(session, change, "amt-1", MONDAY_0900, "user:anna")
        published += [event_message(e) for e in change.events]
    async with db.read() as session:
        stored = list(
            await session.scalars(
                select(QueueEvent).where(QueueEvent.seq > 3).order_by(QueueEvent.seq)
            )
        )
    assert published == [event_message(e) for e in stored]
    assert [(m["type"], m["ticket"]) for m in published] == [
        ("called", first.id),
        ("done", first.id),
        ("called", second.id),
    ]
    assert published[0]["services"] == ["id", "pass"]
    assert published[0]["counter"] == "Platz 1"
    assert [m["seq"] for m in published] == [4, 5, 6]


async def test_a_current_ticket_ended_elsewhere_is_not_ended_again_by_the_next_call(db):
    """The counter's current ticket was no longer called (closed meanwhile): the next call
    leaves it as it is, with no second event for it, and calls the next ticket."""
    await a_location(db)
    await open_counters(db, ["amt-1"])
    first, second = await draw(db), await draw(db)
    await call_next(db, "amt-1")
    async with db.write() as session:
        (await session.get(Ticket, first.id)).status = "no_show"
    change = queue.Change()
    async with db.write() as session:
        called = await queue.call_next(session, change, "amt-1", MONDAY_0900, "test")
    assert called is not None and called.id == second.id
    assert [(e.kind, e.ticket_id) for e in change.events] == [("called", second.id)]
    async with db.read() as session:
        assert (await session.get(Ticket, first.id)).status == "no_show"
        kinds = list(
            await session.scalars(select(QueueEvent.kind).where(QueueEvent.ticket_id == first.id))
        )
    assert kinds == ["issued", "called"]


async def test_a_call_first_ends_the_current_ticket_and_completes_its_appointment(db):
    """The next call ends the counter's current ticket (a checked-in appointment: the
    appointment is completed), then calls the next one, in two events with consecutive seqs;
    a call with nobody left ends the current ticket and leaves the counter free."""
    await a_location(db)
    booked = await a_booking(db, MONDAY_0900)
    async with db.write() as session:
        checked_in = await queue.check_in(
            session, queue.Change(), MONDAY_0900, "amt", booked.appointment.code, actor="kiosk"
        )
    walk_in = await draw(db)
    await open_counters(db, ["amt-1"])
    first = queue.Change()
    async with db.write() as session:
        assert (await queue.call_next(session, first, "amt-1", MONDAY_0900, "test")).id == (
            checked_in.id
        )
    later = MONDAY_0900 + timedelta(minutes=7)
    second = queue.Change()
    async with db.write() as session:
        called = await queue.call_next(session, second, "amt-1", later, "test")
        assert called is not None and called.id == walk_in.id
        state = await queue.counter_state(session, "amt-1", later)
        assert (state.current_ticket_id, state.updated_at) == (walk_in.id, later)
    (called_first,) = first.events
    assert [(e.kind, e.ticket_id, e.seq, e.counter_id) for e in second.events] == [
        ("done", checked_in.id, called_first.seq + 1, "amt-1"),
        ("called", walk_in.id, called_first.seq + 2, "amt-1"),
    ]
    assert second.events[1].data == {"counter": "Platz 1"}
    assert second.events[1].services == ["pass"]
    async with db.read() as session:
        ended = await session.get(Ticket, checked_in.id)
        assert (ended.status, ended.finished_at) == ("done", later)
        appointment = await session.get(type(booked.appointment), booked.appointment.id)
        assert appointment.status == "completed"
        written = list(
            await session.scalars(
                select(QueueEvent).where(QueueEvent.seq > called_first.seq).order_by(QueueEvent.seq)
            )
        )
    assert [(e.kind, e.ticket_id, e.number, e.services, e.data) for e in written] == [
        ("done", checked_in.id, checked_in.number, [], {}),
        ("called", walk_in.id, walk_in.number, ["pass"], {"counter": "Platz 1"}),
    ]
    last = queue.Change()
    async with db.write() as session:
        assert await queue.call_next(session, last, "amt-1", later, "test") is None
        assert (await queue.counter_state(session, "amt-1", later)).current_ticket_id is None
    assert [(e.kind, e.ticket_id) for e in last.events] == [("done", walk_in.id)]
    quiet = queue.Change()
    async with db.write() as session:  # nobody current, nobody waiting: nothing happens
        assert await queue.call_next(session, quiet, "amt-1", later, "test") is None
    assert quiet.events == []
    async with db.read() as session:
        assert await session.scalar(select(func.max(QueueEvent.seq))) == last.events[0].seq


async def test_a_called_ticket_read_earlier_in_the_transaction_shows_the_call(db):
    """The ticket a call takes was already read in the same transaction: the call's answer is
    that ticket, as called (not a second copy, not the state before the call)."""
    await a_location(db)
    await open_counters(db, ["amt-1"])
    ticket = await draw(db)
    async with db.write() as session:
        before = await queue.get_ticket(session, ticket.id)
        assert before.status == "waiting"
        called = await queue.call_next(session, queue.Change(), "amt-1", MONDAY_0900, "test")
        assert called is before
        assert (before.status, before.counter_id, before.called_at) == (
            "called",
            "amt-1",
            MONDAY_0900,
        )


async def test_twenty_counters_race_for_ten_tickets(db):
    await a_location(db, counters=20)
    for _ in range(10):
        await draw(db)
    counters = [f"amt-{n}" for n in range(1, 21)]
    await open_counters(db, counters)
    called = await asyncio.gather(*(call_next(db, c) for c in counters))
    got = [t.id for t in called if t is not None]
    assert len(got) == 10
    assert len(set(got)) == 10
    assert called.count(None) == 10
    async with db.read() as session:
        statuses = list(await session.scalars(select(Ticket.status)))
    assert statuses == ["called"] * 10


async def test_call_next_calls_in_arrival_order_and_finishes_the_current(db):
    await a_location(db)
    first = await draw(db)
    second = await draw(db, now=MONDAY_0900 + timedelta(minutes=1))
    await open_counters(db, ["amt-1"])
    assert (await call_next(db, "amt-1")).id == first.id
    assert (await call_next(db, "amt-1")).id == second.id
    async with db.read() as session:
        assert (await session.get(Ticket, first.id)).status == "done"
    assert await call_next(db, "amt-1") is None


async def test_a_closed_counter_cannot_call(db):
    await a_location(db)
    await draw(db)
    with pytest.raises(Conflict) as info:
        await call_next(db, "amt-1")
    assert info.value.reason == "closed"


async def test_unknown_service_is_named(db):
    await a_location(db)
    with pytest.raises(InvalidInput) as info:
        await draw(db, services=("pass", "nope"))
    assert info.value.extra[0]["key"] == "services[1]"


async def test_kiosk_tickets_only_while_open(db):
    await a_location(db, hours="08:00-12:00")
    with pytest.raises(Conflict) as info:
        await draw(db, now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 13:00 local
    assert info.value.reason == "closed"
    staff = await draw(db, now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC), source="staff")
    assert staff.status == "waiting"


async def test_recall_waits_for_the_pause_and_ends_in_no_show(db):
    await a_location(db)
    ticket = await draw(db)
    await open_counters(db, ["amt-1"])
    await call_next(db, "amt-1")
    async with db.write() as session:
        with pytest.raises(Conflict) as info:
            await queue.recall(session, queue.Change(), "amt-1", MONDAY_0900, "test")
    assert info.value.reason == "too_soon"
    now = MONDAY_0900
    for calls in (2, 3):
        now += timedelta(seconds=31)
        async with db.write() as session:
            recalled = await queue.recall(session, queue.Change(), "amt-1", now, "test")
        assert recalled.call_count == calls
    now += timedelta(seconds=31)
    async with db.write() as session:
        last = await queue.recall(session, queue.Change(), "amt-1", now, "test")
    assert last.status == "no_show"
    async with db.write() as session:
        back = await queue.reactivate(
            session, queue.Change(), ticket.id, now + timedelta(minutes=5), "test"
        )
    assert back.status == "waiting"


async def test_transfer_keeps_the_place_by_arrival(db):
    await a_location(db, services={"pass": 10, "other": 10})
    first = await draw(db)
    await draw(db, services=("other",), now=MONDAY_0900 + timedelta(minutes=5))
    await open_counters(db, ["amt-1"])
    await call_next(db, "amt-1")
    async with db.write() as session:
        moved = await queue.transfer(
            session, queue.Change(), "amt-1", "other", MONDAY_0900 + timedelta(minutes=10), "test"
        )
    assert moved.status == "waiting"
    assert (await call_next(db, "amt-1", MONDAY_0900 + timedelta(minutes=11))).id == first.id


async def test_actions_that_do_not_fit_the_state_are_409(db):
    await a_location(db)
    ticket = await draw(db)
    await open_counters(db, ["amt-1"])
    async with db.write() as session:
        with pytest.raises(Conflict) as info:
            await queue.finish(session, queue.Change(), "amt-1", MONDAY_0900, "test")
    assert info.value.reason == "no_current_ticket"
    await call_next(db, "amt-1")
    async with db.write() as session:
        with pytest.raises(Conflict) as info:
            await queue.cancel_ticket(
                session,
                queue.Change(),
                await queue.get_ticket(session, ticket.id),
                MONDAY_0900,
                "t",
            )
    assert info.value.reason == "not_waiting"
    async with db.write() as session:
        with pytest.raises(Conflict) as info:
            await queue.set_counter_status(
                session, queue.Change(), "amt-1", "close", MONDAY_0900, "test"
            )
    assert info.value.reason == "has_current"


async def test_one_clerk_per_counter(db):
    await a_location(db)
    async with db.write() as session:
        await queue.sit(session, queue.Change(), "amt-1", "anna", MONDAY_0900)
    async with db.write() as session:
        with pytest.raises(Conflict) as info:
            await queue.sit(session, queue.Change(), "amt-1", "ben", MONDAY_0900)
    assert info.value.reason == "occupied"
    async with db.write() as session:
        await queue.leave(session, queue.Change(), "amt-1", "anna", MONDAY_0900)
        await queue.sit(session, queue.Change(), "amt-1", "ben", MONDAY_0900)


async def test_end_of_day_closes_what_still_waits(db):
    await a_location(db, hours="08:00-12:00")
    ticket = await draw(db)
    async with db.read() as session:
        assert await queue.due_closings(session, MONDAY_0900) == []
        assert await queue.due_closings(session, datetime(2026, 11, 23, 11, 0, tzinfo=UTC)) == [
            "amt"
        ]
    async with db.write() as session:
        closed = await queue.close_day(
            session, queue.Change(), "amt", datetime(2026, 11, 23, 11, 0, tzinfo=UTC), "end of day"
        )
    assert closed == 1
    async with db.read() as session:
        row = await session.get(Ticket, ticket.id)
    assert (row.status, row.end_reason) == ("closed", "end of day")


async def test_unknown_counter_is_404(db):
    await a_location(db)
    with pytest.raises(NotFound):
        await call_next(db, "nowhere")


async def test_an_appointment_becoming_due_raises_an_event_once(db, clock):
    from aufruf.worker import Worker

    await a_location(db)
    booked = await a_booking(db, MONDAY_0900 + timedelta(minutes=30))
    async with db.write() as session:
        await queue.check_in(
            session, queue.Change(), MONDAY_0900, "amt", booked.appointment.code, actor="kiosk"
        )
    worker = Worker(db, clock)
    clock.set(MONDAY_0900)
    await worker.tick()
    # due two minutes before its time: the timer knows when to wake up
    assert worker.next_due == MONDAY_0900 + timedelta(minutes=28)
    clock.set(MONDAY_0900 + timedelta(minutes=28))
    await worker.tick()
    await worker.tick()
    async with db.read() as session:
        kinds = list(await session.scalars(select(QueueEvent.kind).order_by(QueueEvent.seq)))
    assert kinds == ["issued", "due"]


async def test_a_locations_own_queue_settings_apply(db):
    await a_location(
        db, queue={"max_calls": 1, "appointment_letter": "P", "recall_pause_seconds": 0}
    )
    await draw(db)
    await open_counters(db, ["amt-1"])
    await call_next(db, "amt-1")
    async with db.write() as session:
        recalled = await queue.recall(session, queue.Change(), "amt-1", MONDAY_0900, "test")
    # one call only: the next recall marks it absent
    assert recalled.status == "no_show"
    async with db.read() as session:
        rules = await queue.rules_at(session, "amt")
    assert rules.appointment_letter == "P"


async def test_no_walk_ins_when_the_wait_would_run_past_closing(db):
    await a_location(
        db, hours="08:00-12:00", services={"pass": 30}, counters=1, queue={"cutoff_by_wait": True}
    )
    await open_counters(db, ["amt-1"])
    eleven = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 local, an hour before closing
    assert (await draw(db, now=eleven)).status == "waiting"  # 0 minutes ahead
    await draw(db, now=eleven)  # 30 minutes
    with pytest.raises(Conflict) as info:
        await draw(db, now=eleven)  # would wait 60 minutes: past 12:00
    assert info.value.reason == "closed"
    # staff can still give out a ticket
    assert (await draw(db, now=eleven, source="staff")).status == "waiting"


async def test_a_closure_stops_walk_in_tickets(db):
    from datetime import date

    await a_location(db, closures=[(date(2026, 11, 23), date(2026, 11, 23))])
    with pytest.raises(Conflict) as info:
        await draw(db)
    assert info.value.reason == "closed"


async def test_twenty_counters_calling_again_and_again_never_fail_nor_share_a_ticket(db):
    """Each call finishes the counter's current ticket and takes the next, while the other
    counters do the same: nobody is called twice and no call fails."""
    await a_location(db, counters=20)
    for _ in range(120):
        await draw(db, source="staff")
    counters = [f"amt-{n}" for n in range(1, 21)]
    await open_counters(db, counters)

    async def calls(counter_id: str) -> list[int]:
        return [t.id for _ in range(5) if (t := await call_next(db, counter_id)) is not None]

    called = [i for got in await asyncio.gather(*(calls(c) for c in counters)) for i in got]
    assert len(called) == 100
    assert len(set(called)) == 100


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
async def test_two_workers_announce_a_due_appointment_once(db):
    """Two instances' worker loops at the same moment: one "due" event, not two (a race
    only PostgreSQL has: SQLite lets one writer at a time begin)."""
    from sqlalchemy import text

    from aufruf.booking.service import BookingRequest, book
    from tests.conftest import SECRET

    await a_location(db, "due-race")
    async with db.write() as session:
        booked = await book(
            session,
            SECRET,
            MONDAY_0900 - timedelta(days=1),
            BookingRequest(
                location="due-race",
                services=["pass"],
                start=MONDAY_0900,
                name="E",
                email="e@example.org",
            ),
        )
    async with db.write() as session:
        await queue.check_in(
            session,
            queue.Change(),
            MONDAY_0900,
            "due-race",
            booked.appointment.code,
            actor="kiosk",
        )

    async def second_worker() -> None:
        async with db.write() as session:
            await queue.raise_due_events(session, queue.Change(), MONDAY_0900)

    async with db.write() as session:
        await queue.raise_due_events(session, queue.Change(), MONDAY_0900)
        racing = asyncio.create_task(second_worker())
        # the first worker commits only once the second one waits for its lock
        while not racing.done():
            async with db.read() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            if waiting:
                break
            await asyncio.sleep(0)
    await racing

    async with db.read() as session:
        kinds = list(
            await session.scalars(
                select(QueueEvent.kind)
                .where(QueueEvent.location_id == "due-race")
                .order_by(QueueEvent.seq)
            )
        )
    assert kinds == ["issued", "due"]
