"""A counter's call takes the head of its line. On PostgreSQL the database chooses it (one
statement, the line is not read into the app); whatever chooses, a counter calling again and
again must call its line in exactly the call order of aufruf.queue.logic: priorities first, due
appointments by their time (or with the configured advantage), everyone else by arrival, ties
by ticket id; only tickets whose every service the counter serves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from aufruf.booking.model import Appointment
from aufruf.offices.model import CounterService
from aufruf.queue import logic
from aufruf.queue import service as queue
from aufruf.queue.model import Ticket
from tests.builders import a_location

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Hagen
SERVICES = (["pass"], ["id"], ["id", "pass"])
RULES = {
    "due appointments first": {},
    "no grace": {"due_grace_minutes": 0},
    "advantage of 10 minutes": {"appointment_advantage_minutes": 10},
    "advantage of none": {"appointment_advantage_minutes": 0},
}


async def a_line(db, seed: int) -> list[logic.Waiting]:
    """Thirty waiting tickets: arrivals within the last hour (some at the same instant), a few
    with a staff priority, a third checked in for appointments from 20 minutes ago to 20
    minutes ahead, some of them becoming due at this very instant."""
    rng = random.Random(seed)
    line = []
    for n in range(30):
        services = rng.choice(SERVICES)
        async with db.write() as session:
            ticket = await queue.draw_ticket(
                session, queue.Change(), NOW, "amt", services, source="staff", actor="t"
            )
            arrived = NOW - timedelta(minutes=rng.choice([5, 5, 12, 30, 47, 60]) + n % 3)
            priority = rng.choice([0, 0, 0, 0, 1, 2])
            appointment_at = None
            if rng.random() < 0.35:
                # due since long, due exactly now (without grace, with two minutes), soon
                minutes = rng.choice([-20, -5, 0, 2, 3, 10, 20])
                appointment_at = NOW + timedelta(minutes=minutes)
                booked = Appointment(
                    location_id="amt",
                    start_at=appointment_at,
                    end_at=appointment_at + timedelta(minutes=10),
                    status="checked_in",
                    code=f"C{n:05d}",
                    nonce=f"n{seed}-{n}",
                    created_at=NOW - timedelta(days=1),
                )
                session.add(booked)
                await session.flush()
            await session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id)
                .values(
                    arrived_at=arrived,
                    priority=priority,
                    appointment_id=booked.id if appointment_at else None,
                )
            )
        line.append(
            logic.Waiting(ticket.id, frozenset(services), arrived, priority, appointment_at)
        )
    return line


@pytest.mark.parametrize("rules", RULES.values(), ids=RULES.keys())
@pytest.mark.parametrize("seed", [1, 2])
async def test_calling_again_and_again_follows_the_call_order(db, rules, seed):
    await a_location(db, services={"pass": 10, "id": 5}, counters=2, queue=rules)
    async with db.write() as session:  # Platz 2 serves passports only
        await session.execute(
            delete(CounterService).where(
                CounterService.counter_id == "amt-2", CounterService.service_id == "id"
            )
        )
        for counter in ("amt-1", "amt-2"):
            await queue.set_counter_status(session, queue.Change(), counter, "open", NOW, "t")
    line = await a_line(db, seed)
    async with db.read() as session:
        order = (await queue.rules_at(session, "amt")).order
    expected = {
        counter: [t.id for t in logic.desk_line(logic.Desk(counter, served), line, NOW, order)]
        for counter, served in (
            ("amt-2", frozenset({"pass"})),
            ("amt-1", frozenset({"pass", "id"})),
        )
    }

    async def calls(counter: str) -> list[int]:
        called = []
        while True:
            async with db.write() as session:
                ticket = await queue.call_next(session, queue.Change(), counter, NOW, "t")
            if ticket is None:
                return called
            called.append(ticket.id)

    # Platz 2 calls its whole line first, then Platz 1 calls everything left, in order
    assert await calls("amt-2") == expected["amt-2"]
    left = [i for i in expected["amt-1"] if i not in expected["amt-2"]]
    assert await calls("amt-1") == left
    assert len(expected["amt-2"]) + len(left) == len(line)
