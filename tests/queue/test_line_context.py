"""What a location's figures need besides its waiting tickets (queue.service.line_context):
the counters in their order with what they serve and whether they are open, the minutes each
service takes (configured, then measured), and the work in progress at each counter. On
PostgreSQL it is one plain statement; it must say what the ORM reads say."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update

from aufruf.offices.model import Counter, CounterService, LocationService
from aufruf.queue import service as queue
from aufruf.queue.logic import Desk, Serving
from tests.builders import a_location


async def act(db, step) -> None:
    async with db.write() as session:
        await step(session, queue.Change())


async def test_the_line_context_names_counters_minutes_and_work_in_progress(db, clock):
    await a_location(db, services={"pass": 10, "id": 5}, counters=3, queue={"max_calls": 2})
    async with db.write() as session:
        # Platz 2 serves only passports, Platz 3 is switched off; ids get 8 local minutes
        await session.execute(
            delete(CounterService).where(
                CounterService.counter_id == "amt-2", CounterService.service_id == "id"
            )
        )
        await session.execute(update(Counter).where(Counter.id == "amt-3").values(active=False))
        await session.execute(
            update(LocationService)
            .where(LocationService.service_id == "id")
            .values(duration_minutes=8)
        )
    now = clock.now()
    for counter in ("amt-1", "amt-2"):
        await act(db, lambda s, c, k=counter: queue.set_counter_status(s, c, k, "open", now, "t"))
    for services in (["pass"], ["pass"], ["id"]):
        await act(
            db,
            lambda s, c, x=services: queue.draw_ticket(
                s, c, now, "amt", x, source="staff", actor="t"
            ),
        )
    # Platz 1 serves a passport for 4 minutes, then calls the next one and starts it
    await act(db, lambda s, c: queue.call_next(s, c, "amt-1", now, "t"))
    await act(db, lambda s, c: queue.start(s, c, "amt-1", now, "t"))
    later = now + timedelta(minutes=4)
    await act(db, lambda s, c: queue.call_next(s, c, "amt-1", later, "t"))
    await act(db, lambda s, c: queue.start(s, c, "amt-1", later, "t"))
    await act(db, lambda s, c: queue.set_counter_status(s, c, "amt-2", "pause", later, "t"))

    async with db.read() as session:
        context = await queue.line_context(session, "amt")
        if db.engine.dialect.name == "postgresql":  # the plain statement against the ORM
            assert context.desks == await queue._desks(session, "amt")
            assert context.service_minutes == await queue._service_minutes(session, "amt")
            assert context.serving == await queue._serving(session, ["amt-1", "amt-2"])
            assert context.rules == await queue.rules_at(session, "amt")

    assert context.desks == [
        Desk("amt-1", frozenset({"pass", "id"}), True),
        Desk("amt-2", frozenset({"pass"}), False),  # paused
    ]
    assert context.service_minutes == {"pass": 4.0, "id": 8.0}  # measured; configured here
    assert context.serving == {"amt-1": Serving(frozenset({"pass"}), later)}
    assert context.rules.max_calls == 2
