"""Invariants of the call order over random days in a small office.

A day is a random sequence of events: walk-ins arriving, appointments checking in, counters
calling their next ticket, time passing, a clerk raising a ticket's priority, transferring the
ticket at the counter to other services (it goes back into the line with its arrival), changing
a waiting ticket's services, reactivating a no-show (back with its arrival), pausing or
reopening a counter. `simulate` plays the day with the logic alone and records every step;
each test states one invariant in words and checks it over every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from aufruf.queue.logic import (
    Desk,
    OrderRules,
    Waiting,
    call_order,
    desk_line,
    estimated_wait_minutes,
    is_due,
    next_due_change,
    next_for,
    people_ahead,
)

OPENING = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
MINUTES = {"A": 10.0, "B": 6.0, "C": 20.0}

properties = settings(max_examples=200, deadline=None, derandomize=True, database=None)

SERVICES = st.sampled_from(["A", "B", "C", "A", "B", "AB", "AC", "BC", "ABC"]).map(frozenset)
RULES = st.sampled_from(
    [
        OrderRules(),
        OrderRules(due_grace=timedelta(0)),
        OrderRules(appointment_advantage=timedelta(minutes=10)),
        OrderRules(appointment_advantage=timedelta(0)),
    ]
)
PICK = st.integers(0, 20)  # which ticket or counter, modulo how many there are
WALK_IN = st.tuples(st.just("walk_in"), SERVICES)
CHECK_IN = st.tuples(st.just("check_in"), SERVICES, st.integers(-15, 45))  # appointment - now
CALL = st.tuples(st.just("call"), PICK)
WAIT = st.tuples(st.just("wait"), st.integers(1, 20))
# Arrivals, calls and time passing come up more often than a clerk's interventions.
EVENT = st.one_of(
    WALK_IN,
    WALK_IN,
    CHECK_IN,
    CHECK_IN,
    CALL,
    CALL,
    WAIT,
    WAIT,
    st.tuples(st.just("priority"), PICK, st.integers(1, 2)),
    st.tuples(st.just("transfer"), PICK, SERVICES),
    st.tuples(st.just("change_services"), PICK, SERVICES),
    st.tuples(st.just("reactivate"), PICK),
    st.tuples(st.just("toggle"), PICK),
)
DESKS = st.lists(st.tuples(SERVICES, st.booleans()), min_size=1, max_size=4).map(
    lambda specs: [Desk(str(i), services, open) for i, (services, open) in enumerate(specs)]
)


@dataclass(frozen=True)
class Snapshot:
    waiting: tuple[Waiting, ...]
    desks: tuple[Desk, ...]
    now: datetime


@dataclass(frozen=True)
class Step:
    event: tuple
    before: Snapshot
    after: Snapshot
    rules: OrderRules
    # tickets that moved or entered ahead of others by an allowed cause
    entered_ahead: frozenset[int] = frozenset()
    # a ticket whose own services changed: its own count is not comparable
    transferred: int | None = None
    entered: int | None = None  # a ticket (re)entering the line
    called: Waiting | None = None
    calling_desk: Desk | None = None


@dataclass
class Office:
    rules: OrderRules
    desks: list[Desk]
    now: datetime = OPENING
    waiting: dict[int, Waiting] = field(default_factory=dict)
    at_counter: dict[int, Waiting] = field(default_factory=dict)  # called, being served
    last_id: int = 0

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self.waiting.values()), tuple(self.desks), self.now)

    def play(self, event: tuple) -> Step:
        before = self.snapshot()
        effects = getattr(self, event[0])(*event[1:])
        return Step(event, before, self.snapshot(), self.rules, **effects)

    def walk_in(self, services: frozenset[str]) -> dict:
        self.last_id += 1
        self.waiting[self.last_id] = Waiting(self.last_id, services, self.now)
        return {"entered": self.last_id}

    def check_in(self, services: frozenset[str], minutes_to_appointment: int) -> dict:
        self.last_id += 1
        appointment_at = self.now + timedelta(minutes=minutes_to_appointment)
        ticket = Waiting(self.last_id, services, self.now, appointment_at=appointment_at)
        self.waiting[ticket.id] = ticket
        due = frozenset({ticket.id}) if is_due(ticket, self.now, self.rules) else frozenset()
        return {"entered": ticket.id, "entered_ahead": due}

    def call(self, pick: int) -> dict:
        desk = self.desks[pick % len(self.desks)]
        ticket = next_for(desk, self.waiting.values(), self.now, self.rules)
        if ticket is not None:
            self.at_counter[ticket.id] = self.waiting.pop(ticket.id)
        return {"called": ticket, "calling_desk": desk}

    def wait(self, minutes: int) -> dict:
        later = self.now + timedelta(minutes=minutes)
        newly_due = frozenset(
            t.id
            for t in self.waiting.values()
            if is_due(t, later, self.rules) and not is_due(t, self.now, self.rules)
        )
        self.now = later
        return {"entered_ahead": newly_due}

    def priority(self, pick: int, raise_by: int) -> dict:
        if not self.waiting:
            return {}
        ticket = self.waiting[sorted(self.waiting)[pick % len(self.waiting)]]
        self.waiting[ticket.id] = replace(ticket, priority=ticket.priority + raise_by)
        return {"entered_ahead": frozenset({ticket.id})}

    def transfer(self, pick: int, services: frozenset[str]) -> dict:
        if not self.at_counter:
            return {}
        ticket = self.at_counter.pop(sorted(self.at_counter)[pick % len(self.at_counter)])
        self.waiting[ticket.id] = replace(ticket, services=services)
        return {"entered": ticket.id, "entered_ahead": frozenset({ticket.id})}

    def change_services(self, pick: int, services: frozenset[str]) -> dict:
        if not self.waiting:
            return {}
        ticket = self.waiting[sorted(self.waiting)[pick % len(self.waiting)]]
        self.waiting[ticket.id] = replace(ticket, services=services)
        return {"entered_ahead": frozenset({ticket.id}), "transferred": ticket.id}

    def reactivate(self, pick: int) -> dict:
        if not self.at_counter:
            return {}
        ticket = self.at_counter.pop(sorted(self.at_counter)[pick % len(self.at_counter)])
        self.waiting[ticket.id] = ticket
        return {"entered": ticket.id, "entered_ahead": frozenset({ticket.id})}

    def toggle(self, pick: int) -> dict:
        i = pick % len(self.desks)
        self.desks[i] = replace(self.desks[i], open=not self.desks[i].open)
        return {}


def simulate(rules: OrderRules, desks: list[Desk], events: Iterable[tuple]) -> list[Step]:
    office = Office(rules, list(desks))
    return [office.play(event) for event in events]


DAYS = st.builds(simulate, RULES, DESKS, st.lists(EVENT, min_size=20, max_size=60))


def ahead(snapshot: Snapshot, rules: OrderRules) -> dict[int, int]:
    return people_ahead(snapshot.waiting, snapshot.desks, snapshot.now, rules)


def position(snapshot: Snapshot, rules: OrderRules) -> dict[int, int]:
    return {t.id: i for i, t in enumerate(call_order(snapshot.waiting, snapshot.now, rules))}


@properties
@given(DAYS)
def test_nobody_is_called_twice_and_every_call_is_for_the_calling_counter(
    day: list[Step],
) -> None:
    """A counter calls only a ticket that is waiting and that it serves all services of, and
    calling takes it out of the line: no ticket is called again unless it came back into the
    line (transfer, reactivation). An open counter with someone it may call does call."""
    callable_ids: set[int] = set()
    for step in day:
        if step.entered is not None:
            callable_ids.add(step.entered)
        if step.event[0] != "call":
            continue
        desk, ticket = step.calling_desk, step.called
        assert desk is not None
        if ticket is None:
            servable = [t for t in step.before.waiting if t.services <= desk.services]
            assert not desk.open or not servable
            continue
        assert desk.open
        assert ticket.id in callable_ids, "called twice"
        callable_ids.remove(ticket.id)
        assert ticket in step.before.waiting
        assert ticket.id not in {t.id for t in step.after.waiting}
        assert ticket.services <= desk.services  # all of its services


@properties
@given(DAYS)
def test_people_ahead_rises_only_when_someone_enters_ahead(day: list[Step]) -> None:
    """A ticket's people ahead never rises when a walk-in arrives, a ticket is called or a
    counter pauses or reopens. It rises at most by the number of tickets that entered ahead of
    it by an allowed cause: a staff priority, an appointment becoming due (by time passing or
    checking in due), a transfer, a reactivated no-show."""
    for step in day:
        before, after = ahead(step.before, step.rules), ahead(step.after, step.rules)
        order = position(step.after, step.rules)
        for ticket_id, count in after.items():
            if ticket_id not in before or ticket_id == step.transferred:
                continue
            entered_before_it = [
                u for u in step.entered_ahead if u != ticket_id and order[u] < order[ticket_id]
            ]
            assert count <= before[ticket_id] + len(entered_before_it), step.event


@properties
@given(DAYS)
def test_people_ahead_is_zero_for_the_ticket_a_counter_would_call_next(
    day: list[Step],
) -> None:
    """For every counter, open or paused, the first ticket of its line has nobody ahead, and
    an open counter calls exactly that ticket."""
    for step in day:
        snapshot = step.after
        counts = ahead(snapshot, step.rules)
        for desk in snapshot.desks:
            line = desk_line(desk, snapshot.waiting, snapshot.now, step.rules)
            if line:
                assert counts[line[0].id] == 0
            following = next_for(desk, snapshot.waiting, snapshot.now, step.rules)
            assert following == (line[0] if line and desk.open else None)


@properties
@given(DAYS)
def test_a_walk_in_is_never_overtaken_by_a_later_walk_in_of_the_same_services(
    day: list[Step],
) -> None:
    """Of two walk-ins for the same services without staff priority, the one who arrived
    earlier stands before the other in the call order at every moment."""
    for step in day:
        order = position(step.after, step.rules)
        walk_ins = [t for t in step.after.waiting if t.appointment_at is None and t.priority == 0]
        for a, b in combinations(walk_ins, 2):
            if a.services == b.services and a.arrived_at != b.arrived_at:
                earlier, later = (a, b) if a.arrived_at < b.arrived_at else (b, a)
                assert order[earlier.id] < order[later.id]


@properties
@given(DAYS)
def test_the_order_changes_by_itself_only_at_the_next_due_change(day: list[Step]) -> None:
    """While time passes and nobody acts, the call order stays as it is before the instant
    `next_due_change` names, and some appointment becomes due once it is reached."""
    for step in day:
        if step.event[0] != "wait":
            continue
        change = next_due_change(step.before.waiting, step.before.now, step.rules)
        if change is None or step.after.now < change:
            assert not step.entered_ahead
            assert list(position(step.before, step.rules)) == list(position(step.after, step.rules))
        else:
            assert step.entered_ahead


@properties
@given(DAYS)
def test_estimates_never_grow_when_people_are_called_or_walk_in(day: list[Step]) -> None:
    """With the same counters open, calling a ticket or a walk-in arriving never makes anyone's
    estimated wait longer; and the next ticket of an open counter waits 0 minutes."""
    for step in day:
        before = estimated_wait_minutes(
            step.before.waiting, step.before.desks, step.before.now, step.rules, MINUTES
        )
        after = estimated_wait_minutes(
            step.after.waiting, step.after.desks, step.after.now, step.rules, MINUTES
        )
        if step.event[0] in {"call", "walk_in"}:
            for ticket_id, minutes in after.items():
                if ticket_id in before:
                    assert (minutes is None) == (before[ticket_id] is None)
                    if minutes is not None:
                        assert minutes <= before[ticket_id]
        for desk in step.after.desks:
            following = next_for(desk, step.after.waiting, step.after.now, step.rules)
            if following is not None:
                assert after[following.id] == 0


@given(DAYS)
def test_figures_from_a_line_already_in_order_are_those_of_the_line_as_it_comes(
    day: list[Step],
) -> None:
    """Handing the tickets over in call order (`in_order`, sorted once for both figures) gives
    the same people ahead and estimates as handing them over in any order."""
    for step in day:
        state = step.after
        shuffled = sorted(state.waiting, key=lambda t: -t.id)
        ordered = call_order(state.waiting, state.now, step.rules)
        assert people_ahead(
            ordered, state.desks, state.now, step.rules, in_order=True
        ) == people_ahead(shuffled, state.desks, state.now, step.rules)
        assert estimated_wait_minutes(
            ordered, state.desks, state.now, step.rules, MINUTES, in_order=True
        ) == estimated_wait_minutes(shuffled, state.desks, state.now, step.rules, MINUTES)
