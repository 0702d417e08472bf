"""The call order, people ahead and the waiting-time estimate. Pure: plain data in, plain data out.

The call order: staff priority first (higher level first); then checked-in appointments whose
time has come (from `due_grace` before the appointment time), by appointment time; then everyone
else by arrival. Ties go to the earlier arrival, then the lower ticket id. A counter calls only
tickets for services it serves, all of them: its *line* is the call order filtered that way, and
it calls the head of its line.

Time enters the order only through "is this appointment due?", so the order changes without
anyone acting exactly when an appointment becomes due; `next_due_change` names that instant for
a timer. Everything else here is derived on demand: nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar


class Queued(Protocol):
    """What the call order reads of a waiting ticket: a Waiting, or a row as read (the
    counter's call takes the head of its line from a thousand rows without making objects)."""

    @property
    def id(self) -> int: ...
    @property
    def services(self) -> Collection[str]: ...
    @property
    def arrived_at(self) -> datetime: ...
    @property
    def priority(self) -> int: ...
    @property
    def appointment_at(self) -> datetime | None: ...


Q = TypeVar("Q", bound=Queued)


@dataclass(frozen=True)
class Waiting:
    """A waiting ticket."""

    id: int
    services: frozenset[str]
    arrived_at: datetime  # original arrival (a transfer keeps it unless configured otherwise)
    priority: int = 0  # staff priority level, higher first; 0 = none
    appointment_at: datetime | None = None  # set for checked-in appointments

    def __post_init__(self) -> None:
        if not self.services:
            raise ValueError(f"ticket {self.id} is for no service")


@dataclass(frozen=True)
class Desk:
    """A counter and the services it serves."""

    id: str
    services: frozenset[str]
    open: bool = True  # open (not paused/closed) and able to call


@dataclass(frozen=True)
class Serving:
    """The ticket a counter is serving now: for the work still in progress at that counter."""

    services: frozenset[str]
    called_at: datetime


@dataclass(frozen=True)
class OrderRules:
    """A location's weights for the call order."""

    due_grace: timedelta = timedelta(minutes=2)
    # None: due appointments always go before walk-ins (the default). A duration: a due
    # appointment ranks as if it had arrived that long before its appointment time (or at its
    # real arrival, if earlier), so a walk-in who has waited longer than that is not overtaken.
    appointment_advantage: timedelta | None = None

    def __post_init__(self) -> None:
        if self.due_grace < timedelta(0):
            raise ValueError("due_grace must not be negative")
        if self.appointment_advantage is not None and self.appointment_advantage < timedelta(0):
            raise ValueError("appointment_advantage must not be negative")


OrderKey = tuple[int, int, datetime, datetime, int]

_DUE_BAND = 0  # due appointments, when they always go before walk-ins
_ARRIVAL_BAND = 1  # everyone else


def is_due(t: Queued, now: datetime, rules: OrderRules) -> bool:
    """Whether `t` is an appointment whose time has come: from `due_grace` before its time on.

    Once due, a ticket stays due as time goes on."""
    if t.appointment_at is None:
        return False
    return now >= t.appointment_at - rules.due_grace


def order_key(t: Queued, now: datetime, rules: OrderRules) -> OrderKey:
    """The sort key of the call order: smaller is called earlier; a total order on distinct ids.

    It depends on `now` only through `is_due`, and becoming due never moves a ticket back."""
    appointment_at = t.appointment_at
    if appointment_at is None or not is_due(t, now, rules):
        return (-t.priority, _ARRIVAL_BAND, t.arrived_at, t.arrived_at, t.id)
    if rules.appointment_advantage is None:
        return (-t.priority, _DUE_BAND, appointment_at, t.arrived_at, t.id)
    ranks_from = min(t.arrived_at, appointment_at - rules.appointment_advantage)
    return (-t.priority, _ARRIVAL_BAND, ranks_from, t.arrived_at, t.id)


def call_order(waiting: Iterable[Q], now: datetime, rules: OrderRules) -> list[Q]:
    """All waiting tickets in the order they are to be called. Raises ValueError on a repeated
    ticket id."""
    tickets = list(waiting)
    if len({t.id for t in tickets}) != len(tickets):
        raise ValueError("a ticket id occurs twice among the waiting tickets")
    return sorted(tickets, key=partial(order_key, now=now, rules=rules))


def can_serve(desk_services: frozenset[str], t: Queued) -> bool:
    """Whether a counter serving `desk_services` may call `t`: it serves all of t's services."""
    return desk_services.issuperset(t.services)


def desk_line(desk: Desk, waiting: Iterable[Q], now: datetime, rules: OrderRules) -> list[Q]:
    """The tickets this counter may call, in the order it would call them (open or not)."""
    return call_order((t for t in waiting if can_serve(desk.services, t)), now, rules)


def next_for(
    desk: Desk, waiting: Iterable[Waiting], now: datetime, rules: OrderRules
) -> Waiting | None:
    """The ticket this counter calls now: the head of its line; None when the counter is not
    open or there is nobody it may call."""
    if not desk.open:
        return None
    line = desk_line(desk, waiting, now, rules)
    return line[0] if line else None


def people_ahead(
    waiting: Iterable[Waiting],
    desks: Iterable[Desk],
    now: datetime,
    rules: OrderRules,
    *,
    in_order: bool = False,
) -> dict[int, int]:
    """For every waiting ticket (by id), how many people are ahead of it (`in_order`: the
    tickets come as call_order gives them, and are not sorted again).

    A ticket's count is its place in the line of its best counter: the fewest tickets before it
    in the call order that one counter able to serve it may also call. All counters count, open
    or not, so pausing a counter raises nobody's count. A ticket no counter can serve counts
    everybody before it in the call order.

    Promises: 0 for the ticket that some counter serving it would call next; calling a ticket or
    a walk-in arriving never raises a count; a count rises only when a ticket enters ahead of
    it: a staff priority, an appointment becoming due (or checking in due), a transfer, a
    reactivated ticket; or when counters are reconfigured.
    """
    order = list(waiting) if in_order else call_order(waiting, now, rules)
    least = _least_ahead(order, {d.services for d in desks}, lambda _services: 1)
    return {
        t.id: position if ahead is None else int(ahead)
        for position, (t, ahead) in enumerate(zip(order, least, strict=True))
    }


def estimated_wait_minutes(
    waiting: Iterable[Waiting],
    desks: Iterable[Desk],
    now: datetime,
    rules: OrderRules,
    service_minutes: Mapping[str, float],
    serving: Mapping[str, Serving] | None = None,
    *,
    in_order: bool = False,
) -> dict[int, int | None]:
    """For every waiting ticket (by id), whole minutes until it is likely called; None when no
    open counter can serve it (`in_order`: the tickets come as call_order gives them).

    The model: a ticket takes the sum of `service_minutes` of its services. Among the open
    counters able to serve ticket T, take the line with the least work before T; that work,
    plus the work still in progress at those counters (`serving`, by counter id: the average
    minutes of what it serves minus the time since the call, never below 0), is shared by those
    counters: wait = ceil(work / counters). Without `serving`, nobody ahead in an open counter's
    line means 0, and while the open counters stay the same, calling a ticket or a walk-in
    arriving never raises an estimate. With `serving`, estimates also fall as time passes (a call
    moves work from a line into progress, so it may raise some estimates a little). Raises
    KeyError for a service without minutes.
    """
    order = list(waiting) if in_order else call_order(waiting, now, rules)
    open_desks = [d for d in desks if d.open]
    least = _least_ahead(
        order,
        {d.services for d in open_desks},
        lambda services: _minutes(services, service_minutes),
    )
    in_progress = {
        d.id: _remaining(serving[d.id], now, service_minutes)
        for d in open_desks
        if serving and d.id in serving
    }
    # per service set of a ticket (a few sets for a whole line): the open counters able to
    # serve it and the work in progress at them
    sharing: dict[frozenset[str], tuple[int, float]] = {}
    for services in {t.services for t in order}:
        able = [d for d in open_desks if services <= d.services]
        sharing[services] = (len(able), sum(in_progress.get(d.id, 0.0) for d in able))
    estimates: dict[int, int | None] = {}
    for t, ahead in zip(order, least, strict=True):
        counters, busy = sharing[t.services]
        if not counters or ahead is None:
            estimates[t.id] = None
            continue
        work = ahead + busy
        # a hair below a whole minute from float sums is that minute, not the next
        estimates[t.id] = max(0, math.ceil(work / counters - 1e-9))
    return estimates


def next_due_change(
    waiting: Iterable[Waiting], now: datetime, rules: OrderRules
) -> datetime | None:
    """The earliest instant after `now` at which a waiting appointment becomes due (and the
    call order may change without anyone acting); None when none will. At that instant
    `is_due` is already true, so a timer set to it sees the new order."""
    upcoming = [
        t.appointment_at - rules.due_grace
        for t in waiting
        if t.appointment_at is not None and t.appointment_at - rules.due_grace > now
    ]
    return min(upcoming, default=None)


def rolling_service_minutes(
    history: Mapping[str, Sequence[float]], configured: Mapping[str, float], window: int = 20
) -> dict[str, float]:
    """Minutes a service takes, per service: the mean of its `window` most recent service times
    (`history` NEWEST FIRST, as `ORDER BY finished_at DESC` gives them), or its configured
    duration while it has no history. A service with neither is left out."""
    if window < 1:
        raise ValueError("window must be at least 1")
    minutes = dict(configured)
    for service, times in history.items():
        recent = list(times)[:window]
        if recent:
            minutes[service] = sum(recent) / len(recent)
    return minutes


def _least_ahead(
    order: Sequence[Waiting],
    desk_services: Iterable[frozenset[str]],
    weight: Callable[[frozenset[str]], float],
) -> list[float | None]:
    """Per ticket of `order` (by position): the least weight (of a ticket's services) of the
    tickets before it in the line of a counter able to serve it, over the counters'
    service sets; None when no counter can serve it."""
    least: list[float | None] = [None] * len(order)
    kinds = {t.services for t in order}
    weights: dict[frozenset[str], float] = {}
    for desk in desk_services:
        served = {services for services in kinds if services <= desk}
        for services in served - weights.keys():
            weights[services] = weight(services)
        total = 0.0
        for position, t in enumerate(order):
            if t.services in served:
                known = least[position]
                if known is None or total < known:
                    least[position] = total
                total += weights[t.services]
    return least


def _minutes(services: frozenset[str], service_minutes: Mapping[str, float]) -> float:
    missing = sorted(services - service_minutes.keys())
    if missing:
        raise KeyError(f"no minutes for service {missing[0]!r}")
    return sum(service_minutes[s] for s in services)


def _remaining(current: Serving, now: datetime, service_minutes: Mapping[str, float]) -> float:
    elapsed = (now - current.called_at).total_seconds() / 60
    return max(0.0, _minutes(current.services, service_minutes) - elapsed)
