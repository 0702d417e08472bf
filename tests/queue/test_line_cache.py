"""A drawn ticket's figures from the instance's line state: the same as the whole line's
figures, for any line (hypothesis), and for tickets drawn concurrently in real transactions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aufruf.queue import logic
from aufruf.queue import service as queue
from aufruf.queue.line import LineCache, LineState
from aufruf.queue.logic import Desk, OrderRules, Serving, Waiting
from tests.builders import a_location

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SERVICES = ["a", "b", "c"]
MINUTES = {"a": 5.0, "b": 10.0, "c": 15.0}

service_sets = st.frozensets(st.sampled_from(SERVICES), min_size=1, max_size=3)


@st.composite
def lines(draw):
    count = draw(st.integers(0, 25))
    ids = draw(st.permutations(range(1, count + 2)))  # the newcomer's id may be any of them
    waiting = []
    for i in ids[:count]:
        arrived = NOW + timedelta(minutes=draw(st.integers(-90, 2)))
        appointment = draw(st.none() | st.integers(-30, 30))
        waiting.append(
            Waiting(
                id=i,
                services=draw(service_sets),
                arrived_at=arrived,
                priority=draw(st.sampled_from([0, 0, 0, 1, 2])),
                appointment_at=None
                if appointment is None
                else NOW + timedelta(minutes=appointment),
            )
        )
    desks = [
        Desk(f"c{i}", draw(service_sets), draw(st.booleans()))
        for i in range(draw(st.integers(0, 4)))
    ]
    serving = {
        d.id: Serving(draw(service_sets), NOW - timedelta(minutes=draw(st.integers(0, 20))))
        for d in desks
        if draw(st.booleans())
    }
    order = draw(
        st.sampled_from([OrderRules(), OrderRules(appointment_advantage=timedelta(minutes=10))])
    )
    newcomer = Waiting(
        id=ids[count],
        services=draw(service_sets),
        arrived_at=NOW + timedelta(minutes=draw(st.integers(-1, 1))),
    )
    return waiting, desks, serving, order, newcomer


@settings(max_examples=400, deadline=None)
@given(lines())
def test_a_drawn_tickets_figures_are_those_of_the_whole_line(line):
    waiting, desks, serving, order, newcomer = line
    everyone = [*waiting, newcomer]
    state = LineState(0, order, desks, dict(MINUTES), serving, waiting={w.id: w for w in waiting})
    state.add(newcomer)
    ahead = logic.people_ahead(everyone, desks, NOW, order)[newcomer.id]
    wait = logic.estimated_wait_minutes(everyone, desks, NOW, order, MINUTES, serving)
    assert state.figures_of(newcomer, NOW) == (ahead, wait[newcomer.id])


async def test_tickets_drawn_at_once_are_told_their_place_in_seq_order(db):
    await a_location(db, counters=2)
    lines_cache = LineCache()

    async def draw() -> tuple[int, int | None]:
        change = queue.Change()
        async with db.write() as session:
            ticket = await queue.draw_ticket(
                session, change, NOW, "amt", ["pass"], source="staff", actor="t", lines=lines_cache
            )
        found = await queue.drawn_figures(db, lines_cache, ticket, change, NOW)
        return change.events[0].seq, found.people_ahead[ticket.id]

    first = await draw()  # the line state is read once, then kept
    assert first == (1, 0)
    answers = await asyncio.gather(*(draw() for _ in range(40)))
    # the clock stands still: everyone's place is the number of tickets drawn before
    assert sorted(answers) == [(seq, seq - 1) for seq in range(2, 42)]
    assert lines_cache.states["amt"].seq == 41


async def test_a_change_not_drawn_here_makes_the_line_be_read_again(db):
    await a_location(db, counters=1)
    lines_cache = LineCache()

    async def draw() -> int | None:
        change = queue.Change()
        async with db.write() as session:
            ticket = await queue.draw_ticket(
                session, change, NOW, "amt", ["pass"], source="staff", actor="t", lines=lines_cache
            )
        return (await queue.drawn_figures(db, lines_cache, ticket, change, NOW)).people_ahead[
            ticket.id
        ]

    assert [await draw() for _ in range(3)] == [0, 1, 2]
    async with db.write() as session:  # drawn elsewhere: this instance does not hear of it
        await queue.draw_ticket(
            session, queue.Change(), NOW, "amt", ["pass"], source="staff", actor="t"
        )
    async with db.write() as session:
        await queue.set_counter_status(session, queue.Change(), "amt-1", "open", NOW, "t")
    async with db.write() as session:
        await queue.call_next(session, queue.Change(), "amt-1", NOW, "t")
    assert await draw() == 3  # four drawn before it, one of them called


def a_state(seq: int) -> LineState:
    return LineState(seq, OrderRules(), [Desk("c1", frozenset({"pass"}), True)], {"pass": 10.0}, {})


async def test_a_draw_answered_before_an_earlier_one_waits_for_it_instead_of_rereading():
    """Draws that commit as their statement ends can come back in any order: a later seq
    waits for this instance's earlier draws still under way rather than reading the line."""
    lines_cache = LineCache()
    lines_cache.states["amt"] = a_state(1)

    async def never() -> LineState:
        raise AssertionError("the line was read again")

    early, late = lines_cache.draw_begins("amt"), lines_cache.draw_begins("amt")
    second = Waiting(3, frozenset({"pass"}), NOW)
    lines_cache.draw_ends("amt", late, 3, second)  # seq 3 comes back first
    figures = asyncio.ensure_future(lines_cache.figures("amt", 3, second, NOW, never))
    await asyncio.sleep(0)
    assert not figures.done()  # waiting for seq 2, drawn here
    lines_cache.draw_ends("amt", early, 2, Waiting(2, frozenset({"pass"}), NOW))
    assert await figures == (1, 10)
    assert lines_cache.states["amt"].seq == 3


async def test_a_gap_no_draw_here_can_fill_makes_the_line_be_read_again():
    lines_cache = LineCache()
    lines_cache.states["amt"] = a_state(1)
    reads = []

    async def read() -> LineState:
        reads.append(1)
        state = a_state(3)
        state.add(Waiting(3, frozenset({"pass"}), NOW))
        return state

    failed, late = lines_cache.draw_begins("amt"), lines_cache.draw_begins("amt")
    ticket = Waiting(3, frozenset({"pass"}), NOW)
    lines_cache.draw_ends("amt", late, 3, ticket)
    figures = asyncio.ensure_future(lines_cache.figures("amt", 3, ticket, NOW, read))
    await asyncio.sleep(0)
    assert not figures.done() and not reads
    lines_cache.draw_ends("amt", failed, None, None)  # seq 2 was someone else's
    assert await figures == (0, 0)
    assert reads == [1]
